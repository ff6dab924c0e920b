package invalidator

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

func rule(t *testing.T, tc TableConfig) *cdc.TableRule[compiled] {
	t.Helper()
	c, err := tc.compile()
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return &cdc.TableRule[compiled]{Match: regexp.MustCompile(".*"), PK: []string{"id"}, Config: c}
}

func keysOf(t *testing.T, r *cdc.TableRule[compiled], evs ...cdc.Event) ([]string, error) {
	t.Helper()
	b := &applyBuf{seen: map[string]int{}}
	var errs []error
	for i := range evs {
		if err := collect(&evs[i], r, b.add); err != nil {
			errs = append(errs, err)
		}
	}
	return b.keys, errors.Join(errs...)
}

func TestKeys(t *testing.T) {
	users := TableConfig{Keys: []KeySpec{
		{Key: "user:{id}"},
		{Key: "user:email:{email|lower}"},
		{Key: "org:{org_id}:members", WhenChanged: []string{"org_id"}},
	}}
	old := cdc.RowOf("id", int64(7), "email", "Ann@X.org", "org_id", int64(1), "name", "Ann")
	renamed := cdc.RowOf("id", int64(7), "email", "Ann@X.org", "org_id", int64(1), "name", "Anna")
	moved := cdc.RowOf("id", int64(7), "email", "ann@y.org", "org_id", int64(2), "name", "Ann")
	noMail := cdc.RowOf("id", int64(7), "email", nil, "org_id", int64(1), "name", "Ann")
	// The images of a binlog update share their table's layout; org nil
	// leaves org_id out of the image.
	layout, err := cdc.NewLayout([]string{"id", "email", "org_id", "name"})
	if err != nil {
		t.Fatal(err)
	}
	shared := func(email string, org any, name string) *cdc.Row {
		row := cdc.NewRow(layout)
		row.SetAt(0, int64(7))
		row.SetAt(1, email)
		if org != nil {
			row.SetAt(2, org)
		}
		row.SetAt(3, name)
		return row
	}

	tests := []struct {
		name string
		tc   TableConfig
		evs  []cdc.Event
		want []string
		err  string
	}{
		{
			name: "insert deletes after keys",
			tc:   users,
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Insert, After: old}},
			want: []string{"user:7", "user:email:ann@x.org", "org:1:members"},
		},
		{
			name: "delete deletes before keys",
			tc:   users,
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Delete, Before: moved}},
			want: []string{"user:7", "user:email:ann@y.org", "org:2:members"},
		},
		{
			name: "update changing email deletes old and new",
			tc:   users,
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Update, Before: old, After: moved}},
			want: []string{"user:7", "user:email:ann@x.org", "user:email:ann@y.org", "org:1:members", "org:2:members"},
		},
		{
			name: "when_changed skips untouched template, dedups the rest",
			tc:   users,
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Update, Before: old, After: renamed}},
			want: []string{"user:7", "user:email:ann@x.org"},
		},
		{
			name: "when_changed on images sharing a layout",
			tc:   users,
			evs: []cdc.Event{
				{DB: "shop", Table: "users", Op: cdc.Update, Before: shared("a@x", int64(1), "Ann"), After: shared("a@x", int64(1), "Anna")},
				{DB: "shop", Table: "users", Op: cdc.Update, Before: shared("a@x", int64(1), "Ann"), After: shared("a@x", int64(3), "Ann")},
				{DB: "shop", Table: "users", Op: cdc.Update, Before: shared("b@x", int64(4), "Ann"), After: shared("b@x", nil, "Ann")},
			},
			want: []string{"user:7", "user:email:a@x", "org:1:members", "org:3:members", "user:email:b@x", "org:4:members"},
		},
		{
			name: "when_changed column not in template",
			tc:   TableConfig{Keys: []KeySpec{{Key: "user:{id}:card", WhenChanged: []string{"name", "email"}}}},
			evs: []cdc.Event{
				{DB: "shop", Table: "users", Op: cdc.Update, Before: old, After: renamed},
				{DB: "shop", Table: "users", Op: cdc.Update, Before: renamed, After: renamed},
			},
			want: []string{"user:7:card"},
		},
		{
			name: "when_changed with no before image evicts",
			tc:   TableConfig{Keys: []KeySpec{{Key: "user:{id}", WhenChanged: []string{"name"}}}},
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Update, After: renamed}},
			want: []string{"user:7"},
		},
		{
			name: "when_changed sees insert and delete",
			tc:   TableConfig{Keys: []KeySpec{{Key: "user:{id}", WhenChanged: []string{"name"}}}},
			evs: []cdc.Event{
				{DB: "shop", Table: "users", Op: cdc.Insert, After: old},
				{DB: "shop", Table: "users", Op: cdc.Delete, Before: cdc.RowOf("id", int64(8))},
			},
			want: []string{"user:7", "user:8"},
		},
		{
			name: "NULL column yields no key for that image",
			tc:   users,
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Update, Before: noMail, After: old}},
			want: []string{"user:7", "user:email:ann@x.org"},
		},
		{
			name: "missing column is like NULL",
			tc:   users,
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Insert, After: cdc.RowOf("id", int64(9))}},
			want: []string{"user:9"},
		},
		{
			name: "dedup across events",
			tc:   TableConfig{Keys: []KeySpec{{Key: "user:{id}"}, {Key: "users:all"}}},
			evs: []cdc.Event{
				{DB: "shop", Table: "users", Op: cdc.Insert, After: old},
				{DB: "shop", Table: "users", Op: cdc.Update, Before: old, After: renamed},
				{DB: "shop", Table: "users", Op: cdc.Delete, Before: renamed},
			},
			want: []string{"user:7", "users:all"},
		},
		{
			name: "builtins and filters",
			tc: TableConfig{Keys: []KeySpec{
				{Key: "{db}_{table}_{pk}"},
				{Key: "e:{email|trim|upper}"},
				{Key: "h:{email|trim|lower|hash:md5}"},
				{Key: "city:{profile|json:addr.city|lower}"},
			}},
			evs: []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Insert, PK: []string{"id", "org_id"},
				After: cdc.RowOf("id", int64(7), "org_id", int64(1), "email", " ann@x.org ", "profile", cdc.JSON(`{"addr":{"city":"Oslo"}}`))}},
			want: []string{"shop_users_7:1", "e:ANN@X.ORG", "h:d249273c41f89b03bc92f5bf33fa4b96", "city:oslo"},
		},
		{
			name: "typed values render as text",
			tc:   TableConfig{Keys: []KeySpec{{Key: "k:{b}:{t}:{d}"}}},
			evs: []cdc.Event{{DB: "shop", Table: "t", Op: cdc.Insert,
				Columns: []cdc.Column{cdc.ParseColumnType("t", "datetime"), cdc.ParseColumnType("d", "decimal(5,2)")},
				After:   cdc.RowOf("b", []byte("ab"), "t", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "d", cdc.Decimal("1.50"))}},
			want: []string{"k:ab:2024-01-02 03:04:05:1.50"},
		},
		{
			name: "render error other than NULL fails the event, other keys still go",
			tc:   TableConfig{Keys: []KeySpec{{Key: "user:{id}"}, {Key: "x:{profile|json:a}"}}},
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Insert, After: cdc.RowOf("id", int64(1), "profile", "not json")}},
			want: []string{"user:1"},
			err:  "not JSON",
		},
		{
			name: "json path absent is NULL, not an error",
			tc:   TableConfig{Keys: []KeySpec{{Key: "x:{profile|json:a}"}}},
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Insert, After: cdc.RowOf("profile", cdc.JSON(`{"b":1}`))}},
			want: nil,
		},
		{
			name: "pk from rule when event has none; {pk} without pk is an error",
			tc:   TableConfig{Keys: []KeySpec{{Key: "p:{pk}"}}},
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Delete, Before: cdc.RowOf("id", int64(3))}},
			want: []string{"p:3"},
		},
		{
			name: "event without images",
			tc:   users,
			evs:  []cdc.Event{{DB: "shop", Table: "users", Op: cdc.Update}},
			err:  "without a row image",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keysOf(t, rule(t, tt.tc), tt.evs...)
			if tt.err == "" && err != nil {
				t.Fatalf("error: %v", err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error = %v, want containing %q", err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("keys = %q\nwant   %q", got, tt.want)
			}
		})
	}
}

func TestKeysDelayKeepsLongest(t *testing.T) {
	b := &applyBuf{seen: map[string]int{}}
	b.add("a", 0)
	b.add("a", 500*time.Millisecond)
	b.add("a", 100*time.Millisecond)
	b.add("b", 0)
	if !slices.Equal(b.keys, []string{"a", "b"}) || b.delay[0] != 500*time.Millisecond || b.delay[1] != 0 {
		t.Fatalf("keys %v delays %v", b.keys, b.delay)
	}
}

func TestSameValue(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		a, b cdc.Value
		want bool
	}{
		{nil, nil, true},
		{nil, "", false},
		{"a", "a", true},
		{int64(1), int64(1), true},
		{int64(1), uint64(1), false},
		{[]byte("x"), []byte("x"), true},
		{ts, ts.In(time.FixedZone("x", 3600)), true},
		{cdc.Set{"a", "b"}, cdc.Set{"a", "b"}, true},
		{cdc.Set{"a"}, cdc.Set{"b"}, false},
		{cdc.Decimal("1.0"), cdc.Decimal("1.0"), true},
		{1.5, 1.5, true},
	}
	for _, tt := range tests {
		if got := sameValue(tt.a, tt.b); got != tt.want {
			t.Errorf("sameValue(%#v, %#v) = %v", tt.a, tt.b, got)
		}
	}
}
