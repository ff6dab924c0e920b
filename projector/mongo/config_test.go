package mongo

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem
	}{
		{"ok", Config{URI: "mongodb://127.0.0.1:27017"}, nil},
		{"srv", Config{URI: "mongodb+srv://cluster.example/", Decimal: "string", BulkSize: 10}, nil},
		{"all wrong", Config{URI: "", BulkSize: -1, Decimal: "float"},
			[]string{"uri: required", "bulk_size: must not be negative", `decimal: unknown mode "float"`}},
		{"scheme", Config{URI: "http://x"}, []string{"uri: must start with mongodb://"}},
		{"write concern", Config{URI: "mongodb://x", WriteConcern: WriteConcern{W: "majority", J: new(true), WTimeout: time.Second}}, nil},
		{"write concern number", Config{URI: "mongodb://x", WriteConcern: WriteConcern{W: "2"}}, nil},
		{"unacknowledged", Config{URI: "mongodb://x", WriteConcern: WriteConcern{W: "0", WTimeout: -time.Second}},
			[]string{"write_concern.w: 0: a write must be acknowledged", "write_concern.wtimeout: must not be negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkErrs(t, tc.cfg.Validate(), tc.want) })
	}
}

func TestTableConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  TableConfig
		want []string
	}{
		{"zero", TableConfig{}, nil},
		{"full", TableConfig{Database: "mirror", Collection: "users", ID: "user:{id}", Rename: map[string]string{"a": "b"},
			Include: []string{"a"}, Metadata: "_rowsync", VersionField: "_v", TombstoneTTL: time.Hour,
			DatetimeZone: "Europe/Berlin", Indexes: []Index{{Keys: IndexKeys{{"email", 1}, {"at", -1}}, Unique: true, Name: "e"}}}, nil},
		{"everything wrong", TableConfig{
			Database: "a.b", Collection: "system.x", ID: "{db}", Rename: map[string]string{"a": "$x", "b": "_id", "c": "f", "d": "f"},
			Include: []string{""}, Exclude: []string{"x", ""}, Metadata: "_id", VersionField: "_rowsync_deleted",
			TombstoneTTL: 10 * time.Millisecond, DatetimeZone: "Mars/Olympus",
			Indexes: []Index{{}, {Keys: IndexKeys{{"", 1}, {"b", 2}}}},
		}, []string{
			`database: database name "a.b" must not contain "."`,
			`collection: collection name "system.x" is reserved`,
			"id: template \"{db}\" reads no column",
			`rename.a: field "$x" must not start with $`,
			"rename.b: cannot rename to _id",
			`rename.d: field "f" is also the target of column "c"`,
			"include: cannot be combined with exclude",
			"include[0]: empty column name",
			"exclude[1]: empty column name",
			"metadata: cannot be _id",
			`version_field: "_rowsync_deleted" is reserved`,
			"tombstone_ttl: must be at least 1s",
			`datetime_zone: unknown time zone "Mars/Olympus"`,
			"indexes[0].keys: required",
			"indexes[1].keys[0]: empty field name",
			`indexes[1].keys[1]: order of "b" must be 1 or -1, got 2`,
		}},
		{"ttl without version", TableConfig{TombstoneTTL: time.Hour}, []string{"tombstone_ttl: needs version_field"}},
		{"shard key", TableConfig{ShardKey: []string{"region", "tenant"}}, nil},
		{"bad shard key", TableConfig{ShardKey: []string{"", "a", "a", "x"}, Exclude: []string{"x"}}, []string{
			"shard_key[0]: empty column name",
			`shard_key[2]: column "a" listed twice`,
			`shard_key[3]: column "x" is not written`,
		}},
		{"shard key not included", TableConfig{ShardKey: []string{"r"}, Include: []string{"a"}}, []string{`shard_key[0]: column "r" is not written`}},
		{"dotted rename", TableConfig{Rename: map[string]string{"a": "x.y"}}, []string{`rename.a: field "x.y" must not contain a dot`}},
		{"bad id template", TableConfig{ID: "{a"}, []string{"id: template"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkErrs(t, tc.cfg.Validate(), tc.want) })
	}
}

func checkErrs(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("Validate() = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Validate() = nil, want %d problems", len(want))
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(lines), len(want), err)
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			if strings.Contains(l, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem mentions %q in:\n%s", w, err)
		}
	}
}

func TestIndexKeysYAML(t *testing.T) {
	tests := []struct {
		name, in string
		want     IndexKeys
		err      bool
	}{
		{"text", `keys: "email:1, at:-1"`, IndexKeys{{"email", 1}, {"at", -1}}, false},
		{"bare field", `keys: email`, IndexKeys{{"email", 1}}, false},
		{"maps", "keys: [{email: 1}, {at: -1}]", IndexKeys{{"email", 1}, {"at", -1}}, false},
		{"strings", `keys: ["email:1", "at:-1"]`, IndexKeys{{"email", 1}, {"at", -1}}, false},
		{"bad order", `keys: "email:up"`, nil, true},
		{"bad map order", "keys: [{email: up}]", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ix Index
			err := yaml.Unmarshal([]byte(tc.in), &ix)
			if tc.err != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && !reflect.DeepEqual(ix.Keys, tc.want) {
				t.Errorf("keys = %v, want %v", ix.Keys, tc.want)
			}
		})
	}
}

func TestLiteralTable(t *testing.T) {
	tests := []struct {
		pattern   string
		db, table string
		ok        bool
	}{
		{`shop\.users`, "shop", "users", true},
		{`shop\.order_items`, "shop", "order_items", true},
		{`shop\..*`, "", "", false},
		{`shop.users`, "", "", false}, // "." matches any byte
		{`(?i)shop\.users`, "", "", false},
		{`shop\.(users|orders)`, "", "", false},
	}
	for _, tc := range tests {
		re := "^(?:" + tc.pattern + ")$"
		db, table, ok := literalTable(re)
		if db != tc.db || table != tc.table || ok != tc.ok {
			t.Errorf("literalTable(%q) = %q, %q, %v; want %q, %q, %v", re, db, table, ok, tc.db, tc.table, tc.ok)
		}
	}
}
