package keymap

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

func TestRender(t *testing.T) {
	row := cdc.RowOf("id", int64(8), "org", int64(3), "email", "  Zoe@Example.COM ", "name", nil, "prefs", cdc.JSON(`{"lang":"de","tags":["a","b"],"n":1.50}`), "at", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
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

// TestRenderHints renders one template against rows whose columns sit at
// other positions each time (rows of other tables, a row whose layout was
// emptied and refilled as a pooled row's is), from several goroutines: the
// position a hint remembers must never stand in for a name.
func TestRenderHints(t *testing.T) {
	tp := MustParse("{org}/{pk}/{email}")
	shared, err := cdc.NewLayout([]string{"id", "org", "email", "name"})
	if err != nil {
		t.Fatal(err)
	}
	onShared := cdc.NewRow(shared)
	for i, v := range []cdc.Value{int64(1), int64(2), "a@x", "ann"} {
		onShared.SetAt(i, v)
	}
	reused := cdc.RowOf("email", "b@x", "id", int64(3), "org", int64(4))
	rows := []struct {
		row  *cdc.Row
		pk   []string
		want string
	}{
		{onShared, []string{"id"}, "2/1/a@x"},
		{cdc.RowOf("email", "c@x", "org", int64(5), "id", int64(6)), []string{"id"}, "5/6/c@x"},
		{reused, []string{"org", "id"}, "4/4:3/b@x"},
		{cdc.RowOf("name", "x", "id", int64(7), "org", int64(8), "email", "d@x"), []string{"id"}, "8/7/d@x"},
	}
	check := func(t *testing.T) {
		for _, r := range rows {
			got, err := tp.Render(Input{DB: "d", Table: "t", PK: r.pk, Row: r.row})
			if err != nil || got != r.want {
				t.Errorf("Render(%v) = %q, %v; want %q", r.row, got, err, r.want)
			}
		}
	}
	check(t)
	// Same layout object, other columns at the remembered positions.
	reused.Reset()
	reused.Set("org", int64(9))
	reused.Set("email", "e@x")
	reused.Set("id", int64(10))
	rows[2].want = "9/9:10/e@x"
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				check(t)
			}
		}()
	}
	for range 4 {
		<-done
	}
	// A row missing a column the hint points past.
	if _, err := tp.Render(Input{PK: []string{"id"}, Row: cdc.RowOf("id", int64(1))}); !errors.Is(err, ErrNull) {
		t.Errorf("Render(row without org) = %v, want ErrNull", err)
	}
}
