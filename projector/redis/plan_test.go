package redis

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/rowsync/rowsync/cdc"
)

// planned renders a plan as "w key@ev" / "d key@ev" lines plus failures.
func planned(t *testing.T, tc TableConfig, pk []string, events []cdc.Event) string {
	t.Helper()
	// The client is never used: planning is pure.
	p := newProjector(t, goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}), rules(t, "shop\\..*", tc, pk...))
	pl := newPlan(len(events))
	for i := range events {
		if tr := p.tables.Lookup(events[i].DB, events[i].Table); tr != nil {
			pl.add(i, &events[i], tr.Config)
		}
	}
	var out []string
	for _, o := range pl.ops {
		k := map[opKind]string{opWrite: "w", opDelete: "d"}[o.kind]
		out = append(out, fmt.Sprintf("%s %s@%d", k, o.key, o.ev))
	}
	for i := range events {
		if err := pl.failed.Failed[i]; err != nil {
			if !errors.Is(err, cdc.ErrPermanent) {
				t.Errorf("failure %d not permanent: %v", i, err)
			}
			out = append(out, fmt.Sprintf("fail %d", i))
		}
	}
	return strings.Join(out, "; ")
}

func users(op cdc.Op, before, after *cdc.Row, version uint64) cdc.Event {
	return cdc.Event{DB: "shop", Table: "users", Op: op, PK: []string{"id"}, Before: before, After: after, Pos: cdc.Position{Version: version}}
}

func u(id int64, email any) *cdc.Row { return cdc.RowOf("id", id, "email", email) }

func TestPlan(t *testing.T) {
	guarded := TableConfig{VersionField: "_v"}
	byEmail := TableConfig{Key: "user:{email|lower}"}
	cases := []struct {
		name   string
		tc     TableConfig
		pk     []string
		events []cdc.Event
		want   string
	}{
		{"default key", TableConfig{}, nil,
			[]cdc.Event{users(cdc.Insert, nil, u(8, "a"), 0)},
			"w shop_users_8@0"},
		{"composite pk", TableConfig{}, nil,
			[]cdc.Event{{DB: "shop", Table: "lines", Op: cdc.Insert, PK: []string{"order", "line"}, After: cdc.RowOf("order", int64(5), "line", "b")}},
			"w shop_lines_5:b@0"},
		{"configured pk when the event has none", TableConfig{}, []string{"id"},
			[]cdc.Event{{DB: "shop", Table: "users", Op: cdc.Insert, After: u(3, "x")}},
			"w shop_users_3@0"},
		{"no pk anywhere", TableConfig{}, nil,
			[]cdc.Event{{DB: "shop", Table: "users", Op: cdc.Insert, After: u(3, "x")}},
			"fail 0"},
		{"other table ignored", TableConfig{}, nil,
			[]cdc.Event{{DB: "blog", Table: "posts", Op: cdc.Insert, PK: []string{"id"}, After: u(1, "x")}},
			""},
		{"last op wins", TableConfig{}, nil,
			[]cdc.Event{
				users(cdc.Insert, nil, u(1, "a"), 0),
				users(cdc.Update, u(1, "a"), u(1, "b"), 0),
				users(cdc.Insert, nil, u(2, "a"), 0),
				users(cdc.Delete, u(1, "b"), nil, 0),
			},
			"d shop_users_1@3; w shop_users_2@2"},
		{"pk change deletes the old key", TableConfig{}, nil,
			[]cdc.Event{users(cdc.Update, u(1, "a"), u(2, "a"), 0)},
			"d shop_users_1@0; w shop_users_2@0"},
		{"pk change and back", TableConfig{}, nil,
			[]cdc.Event{
				users(cdc.Update, u(1, "a"), u(2, "a"), 0),
				users(cdc.Update, u(2, "a"), u(1, "a"), 0),
			},
			"w shop_users_1@1; d shop_users_2@1"},
		{"old key rewritten later is not deleted", TableConfig{}, nil,
			[]cdc.Event{
				users(cdc.Update, u(1, "a"), u(2, "a"), 0),
				users(cdc.Insert, nil, u(1, "new"), 0),
			},
			"w shop_users_1@1; w shop_users_2@0"},
		{"key column change", byEmail, nil,
			[]cdc.Event{users(cdc.Update, u(1, "A@x"), u(1, "b@x"), 0)},
			"d user:a@x@0; w user:b@x@0"},
		{"key column unchanged by case", byEmail, nil,
			[]cdc.Event{users(cdc.Update, u(1, "A@x"), u(1, "a@x"), 0)},
			"w user:a@x@0"},
		{"key column was NULL", byEmail, nil,
			[]cdc.Event{users(cdc.Update, u(1, nil), u(1, "b@x"), 0)},
			"w user:b@x@0"},
		{"key column becomes NULL: old key removed, event fails", byEmail, nil,
			[]cdc.Event{users(cdc.Update, u(1, "a@x"), u(1, nil), 0)},
			"d user:a@x@0; fail 0"},
		{"partial before-image", byEmail, nil,
			[]cdc.Event{users(cdc.Update, cdc.RowOf("name", "old"), u(1, "a@x"), 0)},
			"w user:a@x@0"},
		{"missing images", TableConfig{}, nil,
			[]cdc.Event{users(cdc.Insert, nil, nil, 0), users(cdc.Delete, nil, nil, 0), users(0, nil, u(1, "a"), 0)},
			"fail 0; fail 1; fail 2"},
		{"guarded: older event in batch loses", guarded, nil,
			[]cdc.Event{
				users(cdc.Delete, u(1, "a"), nil, 30),
				users(cdc.Insert, nil, u(1, "late"), 20),
			},
			"d shop_users_1@0"},
		{"guarded: equal version, later wins", guarded, nil,
			[]cdc.Event{
				users(cdc.Insert, nil, u(1, "a"), 30),
				users(cdc.Update, u(1, "a"), u(1, "b"), 30),
			},
			"w shop_users_1@1"},
		{"guarded: version 0 is unguarded", guarded, nil,
			[]cdc.Event{
				users(cdc.Insert, nil, u(1, "a"), 30),
				users(cdc.Update, u(1, "a"), u(1, "b"), 0),
			},
			"w shop_users_1@1"},
		{"unguarded rule ignores versions", TableConfig{}, nil,
			[]cdc.Event{
				users(cdc.Insert, nil, u(1, "a"), 30),
				users(cdc.Update, u(1, "a"), u(1, "b"), 20),
			},
			"w shop_users_1@1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := planned(t, tc.tc, tc.pk, tc.events); got != tc.want {
				t.Errorf("plan:\n got  %s\n want %s", got, tc.want)
			}
		})
	}
}

func TestSameKey(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &rule{tmplCols: []string{"k"}, usesPK: true}
	layout, err := cdc.NewLayout([]string{"x", "id", "k"})
	must(t, err)
	// onLayout is a row of the shared layout, as the binlog decoder makes
	// both images of an update: k, then id (nil: absent).
	onLayout := func(k, id cdc.Value) *cdc.Row {
		row := cdc.NewRow(layout)
		if k != nil {
			row.SetAt(2, k)
		}
		if id != nil {
			row.SetAt(1, id)
		}
		return row
	}
	cases := []struct {
		name          string
		before, after *cdc.Row
		want          bool
	}{
		{"equal ints", cdc.RowOf("k", int64(1), "id", int64(7)), cdc.RowOf("k", int64(1), "id", int64(7)), true},
		{"pk changed", cdc.RowOf("k", int64(1), "id", int64(7)), cdc.RowOf("k", int64(1), "id", int64(8)), false},
		{"key column changed", cdc.RowOf("k", "a", "id", int64(7)), cdc.RowOf("k", "b", "id", int64(7)), false},
		{"types differ", cdc.RowOf("k", int64(1), "id", int64(7)), cdc.RowOf("k", uint64(1), "id", int64(7)), false},
		{"partial before-image", cdc.RowOf("x", 1), cdc.RowOf("k", "a", "id", int64(7)), true},
		{"missing in after", cdc.RowOf("k", "a", "id", int64(7)), cdc.RowOf("id", int64(7)), false},
		{"bytes, times, decimals, NULL", cdc.RowOf("k", []byte("a"), "id", t0), cdc.RowOf("k", []byte("a"), "id", t0), true},
		{"NULL to value", cdc.RowOf("k", nil, "id", cdc.Decimal("1.0")), cdc.RowOf("k", "a", "id", cdc.Decimal("1.0")), false},
		{"other types render", cdc.RowOf("k", 1.5, "id", int64(7)), cdc.RowOf("k", 1.5, "id", int64(7)), false},
		{"shared layout, equal", onLayout("a", int64(7)), onLayout("a", int64(7)), true},
		{"shared layout, pk changed", onLayout("a", int64(7)), onLayout("a", int64(8)), false},
		{"shared layout, key column changed", onLayout("a", int64(7)), onLayout("b", int64(7)), false},
		{"shared layout, partial before-image", onLayout(nil, nil), onLayout("a", int64(7)), true},
		{"shared layout, missing in after", onLayout("a", int64(7)), onLayout(nil, int64(7)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.sameKey(tc.before, tc.after, []string{"id"}); got != tc.want {
				t.Errorf("sameKey = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	cols := []cdc.Column{cdc.ParseColumnType("id", "int"), cdc.ParseColumnType("at", "datetime(3)"), cdc.ParseColumnType("n", "text")}
	evs := []cdc.Event{
		{DB: "d", Table: "t", Op: cdc.Insert, PK: []string{"id"}, Columns: cols, Pos: cdc.Position{Version: 7},
			After: cdc.RowOf("id", int64(1), "at", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), "n", nil, "secret", "s")},
		{DB: "d", Table: "t", Op: cdc.Delete, PK: []string{"id"}, Before: cdc.RowOf("id", int64(2))},
		{DB: "d", Table: "t", Op: cdc.Insert, PK: []string{"id"}, Columns: cols, Pos: cdc.Position{Version: 8},
			After: cdc.RowOf("id", int64(3), "at", nil, "n", "x")},
	}
	cases := []struct {
		name string
		tc   TableConfig
		want string // dels, writes, script keys, script args
	}{
		{"guarded", TableConfig{VersionField: "_v", TTL: 2 * time.Second, TombstoneTTL: time.Minute, Exclude: []string{"secret"}},
			`["del" "{d_t_1}:rowsync-stage" "{d_t_3}:rowsync-stage"]
[["hset" "{d_t_1}:rowsync-stage" "id" "1" "at" "2024-05-06 07:08:09.000" "_v" "7"] ["pexpire" "{d_t_1}:rowsync-stage" "2000"] ["hset" "{d_t_3}:rowsync-stage" "id" "3" "n" "x" "_v" "8"] ["pexpire" "{d_t_3}:rowsync-stage" "2000"]]
["d_t_1" "{d_t_1}:rowsync-stage" "{d_t_1}:rowsync-tomb" "d_t_2" "d_t_3" "{d_t_3}:rowsync-stage" "{d_t_3}:rowsync-tomb"]
["W" "7" "_v" "d" "W" "8" "_v"]`},
		{"type_check", TableConfig{TypeCheck: true, Exclude: []string{"secret"}},
			`["del" "{d_t_1}:rowsync-stage" "{d_t_3}:rowsync-stage"]
[["hset" "{d_t_1}:rowsync-stage" "id" "1" "at" "2024-05-06 07:08:09.000"] ["hset" "{d_t_3}:rowsync-stage" "id" "3" "n" "x"]]
["d_t_1" "{d_t_1}:rowsync-stage" "d_t_2" "d_t_3" "{d_t_3}:rowsync-stage"]
["w" "d" "w"]`},
		{"fast path", TableConfig{TTL: 2 * time.Second, Exclude: []string{"secret"}},
			`["del" "d_t_1" "d_t_2" "d_t_3"]
[["hset" "d_t_1" "id" "1" "at" "2024-05-06 07:08:09.000"] ["pexpire" "d_t_1" "2000"] ["hset" "d_t_3" "id" "3" "n" "x"] ["pexpire" "d_t_3" "2000"]]
[]
[]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProjector(t, goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}), rules(t, ".*", tc.tc))
			pl := newPlan(len(evs))
			for i := range evs {
				pl.add(i, &evs[i], p.tables.Lookup("d", "t").Config)
			}
			chunks := p.encode(evs, pl)
			if len(chunks) != 1 {
				t.Fatalf("%d chunks, want 1", len(chunks))
			}
			c := chunks[0]
			writes := [][]string{}
			for _, w := range c.writes {
				writes = append(writes, texts(w))
			}
			keys := append([]string{}, c.keys...)
			got := fmt.Sprintf("%q\n%q\n%q\n%q", texts(c.dels), writes, keys, texts(c.args))
			if got != tc.want {
				t.Errorf("encode:\n got  %s\n want %s", got, tc.want)
			}
			if c.n != 3 {
				t.Errorf("chunk counts %d ops, want 3", c.n)
			}
		})
	}
}

func TestSlotAndTomb(t *testing.T) {
	// Reference values from the Redis Cluster specification (CRC16 of
	// "123456789" is 0x31C3) and CLUSTER KEYSLOT.
	for key, want := range map[string]uint16{"123456789": 0x31C3, "foo": 12182, "{foo}.bar": 12182, "a{}b": slot("a{}b")} {
		if got := slot(key); got != want {
			t.Errorf("slot(%q) = %d, want %d", key, got, want)
		}
	}
	for _, key := range []string{"shop_users_8", "user:{42}:profile", "a{b"} {
		tomb, ok := sideKey(key, ":tomb")
		if !ok || slot(tomb) != slot(key) {
			t.Errorf("sideKey(%q) = %q (%v): slot %d, key slot %d", key, tomb, ok, slot(tomb), slot(key))
		}
	}
	for _, key := range []string{"a}b", "x{}y"} {
		if _, ok := sideKey(key, ":tomb"); ok {
			t.Errorf("sideKey(%q) claims one slot", key)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		tc   TableConfig
		want string // "" = valid; else substrings separated by "|"
	}{
		{"zero value", TableConfig{}, ""},
		{"full", TableConfig{Key: "u:{id}", Include: []string{"a"}, TTL: time.Minute, VersionField: "_v", TombstoneTTL: time.Hour, TombstoneSuffix: ":t"}, ""},
		{"bad template", TableConfig{Key: "u:{id"}, "key: template"},
		{"unknown filter", TableConfig{Key: "u:{id|lowr}"}, "key: "},
		{"template reads no row", TableConfig{Key: "{db}:{table}"}, "key: template"},
		{"include and exclude", TableConfig{Include: []string{"a"}, Exclude: []string{"b"}}, "include: cannot be combined"},
		{"empty names", TableConfig{Include: []string{""}}, "include[0]: empty"},
		{"negative ttl", TableConfig{TTL: -time.Second}, "ttl: must not be negative"},
		{"sub-ms ttl", TableConfig{TTL: time.Microsecond}, "ttl: must be at least 1ms"},
		{"tombstone suffix clash", TableConfig{VersionField: "_v", TombstoneSuffix: stageSuffix}, "tombstone_suffix: "},
		{"tombstone without version", TableConfig{TombstoneTTL: time.Hour, TombstoneSuffix: "x"}, "tombstone_ttl: needs version_field|tombstone_suffix: needs version_field"},
		{"all at once", TableConfig{Key: "{", Include: []string{"a"}, Exclude: []string{"b"}, TTL: -1, VersionField: "v", TombstoneTTL: -1},
			"key: |include: |ttl: |tombstone_ttl: must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.tc.Validate()
			if tc.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tc.want)
			}
			for _, w := range strings.Split(tc.want, "|") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, missing %q", err, w)
				}
			}
		})
	}
	if err := (Config{ScriptKeys: -1}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "script_keys:") {
		t.Errorf("Config.Validate = %v", err)
	}
}

func TestNewAndCheckSchema(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	bad := append(rules(t, "a\\.b", TableConfig{Key: "{db}"}), cdc.TableRule[TableConfig]{Config: TableConfig{}})
	_, err := New(c, bad, nil)
	if err == nil || !strings.Contains(err.Error(), "tables[0].key: ") || !strings.Contains(err.Error(), "tables[1].match: required") {
		t.Errorf("New = %v", err)
	}
	if _, err := New(nil, nil, nil); err == nil {
		t.Errorf("New(nil client) = nil error")
	}
	p := newProjector(t, c, rules(t, "shop\\.users", TableConfig{Key: "user:{email}:{pk}", Include: []string{"email", "nmae"}, VersionField: "email"}, "id"))
	if !p.Wants("shop", "users") || p.Wants("shop", "orders") {
		t.Errorf("Wants is wrong")
	}
	err = p.CheckSchema("shop", "users", []string{"id", "name"}, []string{"id"})
	for _, w := range []string{`key: unknown column "email"`, `include: unknown column "nmae"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("CheckSchema = %v, missing %q", err, w)
		}
	}
	err = p.CheckSchema("shop", "users", []string{"id", "email", "nmae"}, []string{"id"})
	if err == nil || !strings.Contains(err.Error(), "version_field:") {
		t.Errorf("CheckSchema = %v, want a version_field clash", err)
	}
	if err := p.CheckSchema("shop", "orders", nil, nil); err != nil {
		t.Errorf("CheckSchema of an unmatched table = %v", err)
	}
	// {pk} on a keyless table: fine with a configured pk, else a mistake.
	if err := p.CheckSchema("shop", "users", []string{"id", "email", "nmae"}, nil); err == nil || strings.Contains(err.Error(), "needs {pk}") {
		t.Errorf("CheckSchema of a keyless table with pk: [id] = %v, want only the version_field clash", err)
	}
	keyless := newProjector(t, c, rules(t, "shop\\.events", TableConfig{}))
	err = keyless.CheckSchema("shop", "events", []string{"at", "what"}, nil)
	if err == nil || !strings.Contains(err.Error(), `key "{db}_{table}_{pk}" needs {pk} but the table has no primary key`) {
		t.Errorf("CheckSchema of a keyless table = %v", err)
	}
	if err := keyless.CheckSchema("shop", "events", []string{"id", "at"}, []string{"id"}); err != nil {
		t.Errorf("CheckSchema of a keyed table = %v", err)
	}
}

// texts dereferences the *string arguments the projector passes.
func texts(args []any) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if s, ok := argText(a); ok {
			out[i] = s
		} else {
			out[i] = fmt.Sprintf("%T(%v)", a, a)
		}
	}
	return out
}

func TestConfigYAML(t *testing.T) {
	src := `
key: "user:{email|lower}"
exclude: [password]
ttl: 90s
version_field: _v
tombstone_ttl: 2h
tombstone_suffix: ":gone"
`
	var tc TableConfig
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&tc); err != nil {
		t.Fatal(err)
	}
	if tc.TTL != 90*time.Second || tc.TombstoneTTL != 2*time.Hour || tc.VersionField != "_v" || tc.Exclude[0] != "password" || tc.TombstoneSuffix != ":gone" {
		t.Errorf("decoded %+v", tc)
	}
	if err := tc.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	var c Config
	dec = yaml.NewDecoder(strings.NewReader("script_keys: 64\nparallel: 2\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil || c.ScriptKeys != 64 || c.Parallel != 2 {
		t.Errorf("Config = %+v, %v", c, err)
	}
}

// encoded renders every chunk's commands, as TestEncode does one.
func encoded(chunks []*chunk) string {
	var b strings.Builder
	for _, c := range chunks {
		writes := [][]string{}
		for _, w := range c.writes {
			writes = append(writes, texts(w))
		}
		fmt.Fprintf(&b, "%q\n%q\n%q\n%q\n", texts(c.dels), writes, c.keys, texts(c.args))
	}
	return b.String()
}

// TestPlanReuse: a plan reused across Apply calls encodes exactly what a
// new one does, also past its string and text blocks (values that grow a
// text block included), and keeps no reference to the last call's events.
func TestPlanReuse(t *testing.T) {
	big := benchBatches("d", 1)[0] // ~6,000 texts of non-string values, > one string block
	for i := range big {
		big[i].Pos.Version = uint64(i + 1)
		if i%40 == 0 {
			// 1,000 bytes of BLOB text: some land where a block has less room left.
			row := big[i].After.Clone()
			row.Set("note", bytes.Repeat([]byte{'b'}, 1000))
			big[i].After = row
		}
	}
	small := []cdc.Event{{DB: "d", Table: "orders", Op: cdc.Insert, PK: []string{"id"}, Columns: benchCols[:2], Pos: cdc.Position{Version: 9},
		After: cdc.RowOf("id", int64(7), "name", "x")}}
	for name, tc := range map[string]TableConfig{"fast": {}, "ttl": {TTL: time.Second}, "guarded": {VersionField: "_v"},
		"type_check include": {TypeCheck: true, Include: []string{"id", "name", "email", "price", "qty", "created", "note", "score"}}} {
		t.Run(name, func(t *testing.T) {
			p := newProjector(t, goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}), rules(t, ".*", tc))
			r := p.tables.Lookup("d", "orders").Config
			encode := func(pl *plan, evs []cdc.Event) string {
				for i := range evs {
					pl.add(i, &evs[i], r)
				}
				return encoded(p.encode(evs, pl))
			}
			want := map[int]string{}
			for _, evs := range [][]cdc.Event{big, small} {
				want[len(evs)] = encode(newPlan(len(evs)), evs)
			}
			pl := newPlan(len(big))
			for round, evs := range [][]cdc.Event{big, small, big, small, big} {
				if round > 0 {
					pl.reset()
					pl.prepare(len(evs))
				}
				if got := encode(pl, evs); got != want[len(evs)] {
					t.Fatalf("round %d: reused plan encodes differently:\n got  %.300s\n want %.300s", round, got, want[len(evs)])
				}
			}
			if pl.nstrs < 2 || pl.ntext < 2 {
				t.Fatalf("test used %d string and %d text blocks, want several", pl.nstrs, pl.ntext)
			}
			pl.reset()
			for _, b := range pl.strBlocks {
				for _, s := range b[:cap(b)] {
					if s != "" {
						t.Fatalf("reset plan keeps string %q", s)
					}
				}
			}
			for _, a := range pl.args[:cap(pl.args)] {
				if a != nil {
					t.Fatalf("reset plan keeps argument %v", a)
				}
			}
			for _, c := range pl.chunks {
				if len(c.dels)+len(c.writes)+len(c.keys)+len(c.args)+len(c.ops) > 0 {
					t.Fatalf("reset plan keeps a chunk's commands")
				}
			}
			if len(pl.ops)+len(pl.index)+len(pl.failed.Failed) > 0 || slices.ContainsFunc(pl.ops[:cap(pl.ops)], func(o op) bool { return o.key != "" || o.rule != nil }) {
				t.Fatalf("reset plan keeps ops")
			}
		})
	}
}

// TestEvalShaArgs: the commit script's call carries the arguments
// go-redis's Script.EvalSha would send for the same keys and ARGV.
func TestEvalShaArgs(t *testing.T) {
	text := func(args []any) []string {
		out := make([]string, len(args))
		for i, a := range args {
			if s, ok := argText(a); ok {
				out[i] = s
			} else {
				out[i] = fmt.Sprint(a) // go-redis's numkeys is an int
			}
		}
		return out
	}
	evs := benchBatches("d", 1)[0][:40]
	for i := range evs {
		evs[i].Pos.Version = uint64(100 + i)
		if i%3 == 0 {
			evs[i].Op, evs[i].After = cdc.Delete, nil
		}
	}
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	for name, tc := range map[string]TableConfig{"guarded": {VersionField: "_v", TTL: time.Second}, "type_check": {TypeCheck: true}} {
		t.Run(name, func(t *testing.T) {
			p, err := NewWithConfig(Config{ScriptKeys: 16}, client, rules(t, ".*", tc), nil)
			must(t, err)
			pl := newPlan(len(evs))
			for i := range evs {
				pl.add(i, &evs[i], p.tables.Lookup("d", "orders").Config)
			}
			chunks := p.encode(evs, pl)
			if len(chunks) != 3 {
				t.Fatalf("%d chunks, want 3", len(chunks))
			}
			for _, c := range chunks {
				want := p.script.g.EvalSha(t.Context(), client.Pipeline(), c.keys, c.args...).Args()
				if got := text(c.evalSha(p.script.sha)); !slices.Equal(got, text(want)) {
					t.Fatalf("evalsha args:\n got  %q\n want %q", got, text(want))
				}
			}
		})
	}
}

// TestFields: fields, which reads rows by index through what it worked
// out per layout, writes what looking every column up by name writes
// (oldFields): in one call and across calls of a reused plan, with rows
// sharing a layout or having their own, partial and NULL columns, event
// columns in another order than the row's or naming columns it lacks,
// include and exclude, more layouts than a plan keeps, and a row whose
// own layout is emptied and refilled between calls as a pooled row's is.
func TestFields(t *testing.T) {
	compiled := func(tc TableConfig) *rule {
		r, err := compile(rules(t, ".*", tc)[0])
		must(t, err)
		return r
	}
	rs := []*rule{compiled(TableConfig{}), compiled(TableConfig{Exclude: []string{"b"}}), compiled(TableConfig{Include: []string{"a", "c", "x"}})}
	colsABC := []cdc.Column{cdc.ParseColumnType("a", "int"), cdc.ParseColumnType("b", "datetime"), cdc.ParseColumnType("c", "text")}
	colsCA := []cdc.Column{colsABC[2], cdc.ParseColumnType("zz", "int"), colsABC[0]}
	layout, err := cdc.NewLayout([]string{"a", "b", "c", "x"})
	must(t, err)
	shared := func(vals ...cdc.Value) *cdc.Row { // nil: absent; "NULL": NULL
		row := cdc.NewRow(layout)
		for i, v := range vals {
			switch v {
			case nil:
			case "NULL":
				row.SetAt(i, nil)
			default:
				row.SetAt(i, v)
			}
		}
		return row
	}
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	pooled := cdc.RowOf("c", "c1", "a", int64(1), "x", "x1")
	rows := []*cdc.Row{
		shared(int64(1), t0, "c", "x"),
		shared(int64(2), nil, "NULL", "x"),
		shared(nil, t0, nil, nil),
		pooled,
		cdc.RowOf("x", "x2", "b", t0, "a", int64(3)),
		cdc.RowOf("b", "NULL", "y", "y"),
		nil,
	}
	var evs []cdc.Event
	for round := range 3 { // > maxLayouts layouts, interleaved
		for _, cols := range [][]cdc.Column{colsABC, colsCA, nil} {
			for _, row := range rows {
				evs = append(evs, cdc.Event{DB: "d", Table: fmt.Sprint("t", round), Op: cdc.Insert, Columns: cols, After: row})
			}
		}
	}
	check := func(pl *plan) {
		t.Helper()
		for i := range evs {
			for _, r := range rs {
				e := &evs[i]
				got := texts(pl.fields(nil, r, e, e.After))
				want := texts(oldFields(r, e, e.After))
				if !slices.Equal(got, want) {
					t.Fatalf("fields(%v, columns %d, include %v exclude %v) = %q, want %q", e.After, len(e.Columns), r.include, r.exclude, got, want)
				}
			}
		}
	}
	pl := newPlan(len(evs))
	check(pl)
	if len(pl.layouts) != maxLayouts {
		t.Fatalf("plan keeps %d layouts, want %d", len(pl.layouts), maxLayouts)
	}
	pl.reset()
	for _, rf := range pl.layouts {
		if rf.layout != nil || rf.cols != nil || rf.rule != nil || slices.ContainsFunc(rf.slots[:cap(rf.slots)], func(s fieldSlot) bool { return s.col != nil || s.name != nil }) {
			t.Fatal("reset plan keeps a layout's fields")
		}
	}
	// The pooled row's layout, same pointer, now holds other columns.
	pooled.Reset()
	pooled.Set("x", "x3")
	pooled.Set("c", "c3")
	pooled.Set("b", t0)
	check(pl)
}

// oldFields is fields as it was before rows had layouts: every column
// looked up by name, per row.
func oldFields(r *rule, e *cdc.Event, row *cdc.Row) []any {
	var dst []any
	text := func(col *cdc.Column, v cdc.Value) (string, bool) { return cdc.FormatText(col, v) }
	for ci := range e.Columns {
		c := &e.Columns[ci]
		v, ok := row.Lookup(c.Name)
		if !ok || !r.keep(c.Name) {
			continue
		}
		if s, ok := text(c, v); ok {
			dst = append(dst, c.Name, s)
		}
	}
	for name, v := range row.All() {
		if _, ok := e.Column(name); ok || !r.keep(name) {
			continue
		}
		if s, ok := text(nil, v); ok {
			dst = append(dst, name, s)
		}
	}
	return dst
}

// TestImageFields: Image.Fields, which `rowsync verify` compares Redis
// with, is the hash fields writes (strings go in as the row's own values,
// other kinds as text), for a shared layout and a row's own, with NULL and
// excluded columns left out.
func TestImageFields(t *testing.T) {
	r, err := compile(rules(t, ".*", TableConfig{Exclude: []string{"secret"}})[0])
	must(t, err)
	im := &Image{db: "d", table: "t", r: r}
	cols := []cdc.Column{cdc.ParseColumnType("id", "int"), cdc.ParseColumnType("name", "varchar(20)"),
		cdc.ParseColumnType("at", "datetime"), cdc.ParseColumnType("note", "text"), cdc.ParseColumnType("secret", "varchar(8)")}
	layout, err := cdc.NewLayout([]string{"id", "name", "at", "note", "secret"})
	must(t, err)
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	shared := cdc.NewRow(layout)
	for i, v := range []cdc.Value{int64(7), "ann", at, nil, "pw"} {
		shared.SetAt(i, v)
	}
	want := map[string]string{"id": "7", "name": "ann", "at": "2024-01-02 03:04:05"}
	for _, row := range []*cdc.Row{shared, cdc.RowOf("id", int64(7), "name", "ann", "at", at, "note", nil, "secret", "pw")} {
		if got := im.Fields(row, cols); !maps.Equal(got, want) {
			t.Fatalf("Fields(%v) = %v, want %v", row, got, want)
		}
	}
}
