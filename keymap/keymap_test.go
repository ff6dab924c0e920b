package keymap

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

func TestRender(t *testing.T) {
	row := cdc.Row{"id": int64(8), "org": int64(3), "email": "  Zoe@Example.COM ", "name": nil,
		"prefs": cdc.JSON(`{"lang":"de","tags":["a","b"],"n":1.50}`), "at": time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	cols := []cdc.Column{cdc.ParseColumnType("at", "datetime")}
	cases := []struct {
		tmpl, want string
		pk         []string
		err        error
	}{
		{"{db}_{table}_{pk}", "shop_users_8", []string{"id"}, nil},
		{"{db}_{table}_{pk}", "shop_users_8:3", []string{"id", "org"}, nil},
		{"user:{id}", "user:8", nil, nil},
		{"user:email:{email|trim|lower}", "user:email:zoe@example.com", nil, nil},
		{"user:email:{email|trim|upper}", "user:email:ZOE@EXAMPLE.COM", nil, nil},
		{"u:{email|trim|lower|hash:md5}", "u:76cec4168e20ad317a8afb3a81ae3fce", nil, nil},
		{"u:{email|trim|lower|hash:sha1}", "u:", nil, nil}, // checked by length below
		{"lang:{prefs|json:lang}", "lang:de", nil, nil},
		{"tag:{prefs|json:$.tags[1]}", "tag:b", nil, nil},
		{"n:{prefs|json:n}", "n:1.50", nil, nil},
		{"at:{at}", "at:2024-01-02 03:04:05", nil, nil},
		{"{{literal}}:{id}", "{literal}:8", nil, nil},
		{"{table|upper}:{pk|upper}", "USERS:8:3", []string{"id", "org"}, nil},
		{"{db}:{pk|trim}", "", []string{"id", "name"}, ErrNull},
		{"{db}:{pk}", "", []string{"id", "name"}, ErrNull},
		{"name:{name}", "", nil, ErrNull},
		{"missing:{nope}", "", nil, ErrNull},
		{"tag:{prefs|json:tags[5]}", "", nil, ErrNull},
	}
	for _, tc := range cases {
		t.Run(tc.tmpl, func(t *testing.T) {
			tp, err := Parse(tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tp.Render(Input{DB: "shop", Table: "users", PK: tc.pk, Row: row, Columns: cols})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tc.tmpl, "sha1") {
				if len(got) != len("u:")+40 {
					t.Fatalf("sha1 key %q", got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{"", "empty key template"},
		{"user:{id", "unclosed {"},
		{"user:id}", "unmatched }"},
		{"user:{}", "empty placeholder"},
		{"user:{email|lowr}", `unknown filter "lowr"`},
		{"user:{email|hash:crc}", `unknown hash "crc"`},
		{"user:{prefs|json:}", "json filter needs a path"},
		{"user:{prefs|json:a[x]}", "bad json path"},
	} {
		t.Run(tc.tmpl, func(t *testing.T) {
			_, err := Parse(tc.tmpl)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestIntrospection(t *testing.T) {
	tp := MustParse("{db}:{org_id}:{pk}:{email|lower}")
	if got := strings.Join(tp.Columns(), ","); got != "org_id,email" {
		t.Fatalf("columns = %s", got)
	}
	if !tp.UsesPK() || !tp.UsesRow() || MustParse("{db}:{table}").UsesRow() {
		t.Fatal("UsesPK/UsesRow wrong")
	}
	if err := tp.CheckColumns([]string{"org_id"}); err == nil || !strings.Contains(err.Error(), `"email"`) {
		t.Fatalf("CheckColumns = %v", err)
	}
}
