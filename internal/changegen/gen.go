// Package changegen is test support for rowsync's end-to-end tests: a
// deterministic generator of row changes for two small MySQL tables
// (shop.users with one column of nearly every MySQL type family, and
// shop.items with a composite primary key), the state the tables end in,
// the Redis hashes rowsync must leave behind, and encoders of the changes
// into the wire formats rowsync reads: canal flat JSON, canal protobuf,
// Maxwell, Debezium (with and without schema) and liukelin JSON lines.
//
// The encoders follow /work/shared/formats/README.md. Where a format can
// carry full type information, the encoding does so (canal mysqlType,
// Debezium with schema and column.propagate.source.type, Maxwell with a
// table-create DDL message first), so that every encoding decodes to the
// same typed cdc.Events. What each format cannot express is listed on its
// encoder.
//
// Everything is a pure function of the Config: the same seed gives the
// same changes, bytes and partitions.
package changegen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// ColumnDef is one column of a generated table.
type ColumnDef struct {
	Name string
	// Type is the MySQL column type as information_schema spells it.
	Type     string
	Nullable bool
}

// Table is a generated table.
type Table struct {
	DB, Name string
	Defs     []ColumnDef
	PK       []string
	cols     []cdc.Column
}

func newTable(db, name string, pk []string, defs ...ColumnDef) *Table {
	t := &Table{DB: db, Name: name, Defs: defs, PK: pk}
	for _, d := range defs {
		t.cols = append(t.cols, cdc.ParseColumnType(d.Name, d.Type))
	}
	return t
}

// Columns returns the typed columns, in table order. Read-only.
func (t *Table) Columns() []cdc.Column { return t.cols }

// Column returns the column named name.
func (t *Table) Column(name string) *cdc.Column {
	for i := range t.cols {
		if t.cols[i].Name == name {
			return &t.cols[i]
		}
	}
	return nil
}

func (t *Table) isPK(name string) bool { return slices.Contains(t.PK, name) }

// inDB returns a copy of t in database db (t itself when db is t's).
func (t *Table) inDB(db string) *Table {
	if db == "" || db == t.DB {
		return t
	}
	return newTable(db, t.Name, t.PK, t.Defs...)
}

// Users is shop.users.
var Users = newTable("shop", "users", []string{"id"},
	ColumnDef{"id", "bigint(20) unsigned", false},
	ColumnDef{"name", "varchar(64)", false},
	ColumnDef{"email", "varchar(128)", true},
	ColumnDef{"balance", "decimal(12,2)", false},
	ColumnDef{"score", "double", true},
	ColumnDef{"created", "datetime(3)", false},
	ColumnDef{"birthday", "date", true},
	ColumnDef{"avatar", "blob", true},
	ColumnDef{"prefs", "json", true},
	ColumnDef{"status", "enum('active','banned','pending')", false},
	ColumnDef{"tags", "set('a','b','c','vip')", true},
)

// Items is shop.items, keyed by (shop_id, sku).
var Items = newTable("shop", "items", []string{"shop_id", "sku"},
	ColumnDef{"shop_id", "int(11)", false},
	ColumnDef{"sku", "varchar(32)", false},
	ColumnDef{"qty", "int(11)", false},
	ColumnDef{"price", "decimal(10,2)", false},
	ColumnDef{"note", "text", true},
)

// Tables lists every generated table.
var Tables = []*Table{Users, Items}

// BinlogFile is the binlog file name the encoders put in positions.
const BinlogFile = "mysql-bin.000001"

// Change is one row change, with full before and after images.
type Change struct {
	Seq    int // 0-based index in the sequence
	Table  *Table
	Op     cdc.Op
	Before *cdc.Row // nil for Insert
	After  *cdc.Row // nil for Delete
	Commit time.Time
}

// Offset is the change's binlog offset: increasing with Seq.
func (c *Change) Offset() uint64 { return 4 + uint64(c.Seq)*256 }

// Image is After, or Before for a delete.
func (c *Change) Image() *cdc.Row {
	if c.After != nil {
		return c.After
	}
	return c.Before
}

// PKChange reports whether an update changes the primary key.
func (c *Change) PKChange() bool {
	return c.Op == cdc.Update && KeyOf(c.Table, c.Before) != KeyOf(c.Table, c.After)
}

// Event returns the cdc.Event a decoder with full type information gives
// for c (Columns and Pos left out: they differ by format).
func (c *Change) Event() cdc.Event {
	return cdc.Event{DB: c.Table.DB, Table: c.Table.Name, Op: c.Op, PK: c.Table.PK,
		Before: c.Before, After: c.After, Commit: c.Commit}
}

// Config says what to generate.
type Config struct {
	Seed uint64
	// Changes is how many row changes to generate.
	Changes int
	// Keys is about how many distinct rows exist over the run.
	Keys int
	// DB is the database name of the generated tables, so that tests
	// sharing a MySQL server or a Redis DB can each have their own.
	// Default: "shop" (the package's Users and Items)
	DB string
	// Partitions is the partition count a pk change must stay within: a
	// new primary key is chosen in the old key's partition (Partition), so
	// all changes of a row, before and after its key changes, are in one
	// partition and keep their order. Default: 1.
	Partitions int
	// Tables names the tables changed, from Tables ("users" has a scalar
	// key, "items" a composite one). Default: all.
	Tables []string
}

// Set is a generated change sequence and its outcome.
type Set struct {
	Config Config
	// Tables are the set's tables: those of Users and Items that
	// Config.Tables selects, or copies of them in Config.DB. Final is
	// keyed by these.
	Tables  []*Table
	Changes []Change
	// Final holds each table's rows after the last change, by KeyOf.
	Final map[*Table]map[string]*cdc.Row
}

// Generate builds a change sequence. It is deterministic in cfg.
func Generate(cfg Config) *Set {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.Keys <= 0 {
		cfg.Keys = 100
	}
	g := &generator{rnd: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), cfg: cfg,
		base: baseTime}
	set := &Set{Config: cfg, Final: map[*Table]map[string]*cdc.Row{}}
	for _, t := range Tables {
		if len(cfg.Tables) == 0 || slices.Contains(cfg.Tables, t.Name) {
			set.Tables = append(set.Tables, t.inDB(cfg.DB))
		}
	}
	if len(set.Tables) == 0 {
		panic(fmt.Sprintf("changegen: no table among %v", cfg.Tables))
	}
	for _, t := range set.Tables {
		g.state = append(g.state, &tableState{t: t, rows: map[string]*cdc.Row{}, idx: map[string]int{}})
	}
	if len(g.state) == 1 {
		g.state[0].limit = cfg.Keys
	} else {
		g.state[0].limit = max(1, cfg.Keys*4/5)
		g.state[1].limit = max(1, cfg.Keys-g.state[0].limit)
	}
	for i := range cfg.Changes {
		set.Changes = append(set.Changes, g.next(i))
	}
	for _, ts := range g.state {
		set.Final[ts.t] = ts.rows
	}
	return set
}

type tableState struct {
	t     *Table
	limit int                 // how many keys to create before reusing
	made  int                 // fresh keys created so far
	rows  map[string]*cdc.Row // live rows
	live  []string            // keys of rows, for random picks
	idx   map[string]int      // key -> index in live
	dead  []*cdc.Row          // deleted rows' pk images, for re-inserts
}

func (s *tableState) add(k string, row *cdc.Row) {
	s.rows[k] = row
	s.idx[k] = len(s.live)
	s.live = append(s.live, k)
}

func (s *tableState) remove(k string) {
	i := s.idx[k]
	last := s.live[len(s.live)-1]
	s.live[i], s.idx[last] = last, i
	s.live = s.live[:len(s.live)-1]
	delete(s.idx, k)
	delete(s.rows, k)
}

type generator struct {
	rnd   *rand.Rand
	cfg   Config
	base  time.Time
	state []*tableState
	fresh int // fresh key counter across tables
}

func (g *generator) next(seq int) Change {
	s := g.state[0]
	if g.rnd.IntN(5) == 0 && len(g.state) > 1 {
		s = g.state[1]
	}
	c := Change{Seq: seq, Table: s.t, Commit: g.base.Add(time.Duration(seq/3) * time.Second)}
	r := g.rnd.Float64()
	switch {
	case len(s.live) == 0 || (r < 0.25 && (s.made < s.limit || len(s.dead) > 0)) || len(s.live) < 3:
		var pk *cdc.Row
		if s.made >= s.limit && len(s.dead) > 0 || len(s.dead) > 0 && g.rnd.IntN(3) == 0 {
			i := g.rnd.IntN(len(s.dead))
			pk = s.dead[i]
			s.dead[i] = s.dead[len(s.dead)-1]
			s.dead = s.dead[:len(s.dead)-1]
		} else {
			pk = g.freshPK(s, -1)
		}
		row := g.row(s.t, pk)
		c.Op, c.After = cdc.Insert, row
		s.add(KeyOf(s.t, row), row)
	case r < 0.85:
		k := s.live[g.rnd.IntN(len(s.live))]
		old := s.rows[k]
		row := g.mutate(s.t, old)
		c.Op, c.Before, c.After = cdc.Update, old, row
		s.rows[k] = row
	case r < 0.96:
		k := s.live[g.rnd.IntN(len(s.live))]
		old := s.rows[k]
		c.Op, c.Before = cdc.Delete, old
		s.remove(k)
		s.dead = append(s.dead, pkOnly(s.t, old))
	default: // primary key change, within the old key's partition
		k := s.live[g.rnd.IntN(len(s.live))]
		old := s.rows[k]
		pk := g.freshPK(s, Partition(s.t, old, g.cfg.Partitions))
		row := g.mutate(s.t, old)
		for name, v := range pk.All() {
			row.Set(name, v)
		}
		c.Op, c.Before, c.After = cdc.Update, old, row
		s.remove(k)
		s.dead = append(s.dead, pkOnly(s.t, old))
		s.add(KeyOf(s.t, row), row)
	}
	return c
}

func pkOnly(t *Table, row *cdc.Row) *cdc.Row {
	pk := cdc.RowOf()
	for _, c := range t.PK {
		pk.Set(c, row.Get(c))
	}
	return pk
}

// freshPK returns a key never used before; with part ≥ 0, one whose
// Partition is part.
func (g *generator) freshPK(s *tableState, part int) *cdc.Row {
	for {
		g.fresh++
		n := g.fresh
		var pk *cdc.Row
		if s.t.Name == Users.Name {
			var id cdc.Value = int64(n)
			if n%41 == 0 { // BIGINT UNSIGNED beyond int64
				id = uint64(math.MaxUint64) - uint64(n)
			}
			pk = cdc.RowOf("id", id)
		} else {
			pk = cdc.RowOf("shop_id", int64(1+n%17), "sku", fmt.Sprintf("SKU-%05d-%s", n, []string{"a", "β", "ç"}[n%3]))
		}
		if part < 0 || Partition(s.t, pk, g.cfg.Partitions) == part {
			s.made++
			return pk
		}
	}
}

var names = []string{"Alice", "Zoë 🚀", `Bob "the builder"`, `back\slash`, "line\nbreak", "中文名字",
	"tab\tchar", "emoji 👍🏽 mix", "O'Brien", "<html>&amp;"}

var notes = []string{"short", "ünïcödé ✓", "multi\nline\r\ntext", `{"not":"json"}`, "🙂🙃", strings.Repeat("x", 200)}

// prefsTexts are JSON values in the text form MySQL prints (cdc.MySQLJSON),
// which every format reproduces.
var prefsTexts = []string{`{"theme": "dark", "n": 3}`, `{"lang": "fr", "tags": ["x", "y"], "deep": {"a": null}}`,
	`[1, 2.5, "three", true]`, `{"emoji": "🚀", "q": "say \"hi\""}`, `"just a string"`, `42`}

var statuses = []string{"active", "banned", "pending"}
var tagLabels = []string{"a", "b", "c", "vip"}

func (g *generator) row(t *Table, pk *cdc.Row) *cdc.Row {
	row := cdc.RowOf()
	for k, v := range pk.All() {
		row.Set(k, v)
	}
	for _, d := range t.Defs {
		if t.isPK(d.Name) {
			continue
		}
		row.Set(d.Name, g.value(t, d))
	}
	return row
}

// mutate returns a copy of row with one to three non-key columns changed.
func (g *generator) mutate(t *Table, row *cdc.Row) *cdc.Row {
	out := cdc.RowOf()
	for k, v := range row.All() {
		out.Set(k, v)
	}
	n := 1 + g.rnd.IntN(3)
	for range n {
		d := t.Defs[g.rnd.IntN(len(t.Defs))]
		if t.isPK(d.Name) {
			continue
		}
		if d.Nullable && g.rnd.IntN(4) == 0 {
			out.Set(d.Name, nil) // set to NULL
			continue
		}
		out.Set(d.Name, g.value(t, d))
	}
	return out
}

func (g *generator) value(t *Table, d ColumnDef) cdc.Value {
	if d.Nullable && g.rnd.IntN(8) == 0 {
		return nil
	}
	r := g.rnd
	switch t.Name + "." + d.Name {
	case "users.name":
		return fmt.Sprintf("%s %d", names[r.IntN(len(names))], r.IntN(1000))
	case "users.email":
		return fmt.Sprintf("user%d@Example.com", r.IntN(100000))
	case "users.balance":
		return decimal(r.Int64N(2_000_000_00)-1_000_000_00, 2)
	case "users.score":
		switch r.IntN(6) {
		case 0:
			return 1.0e10
		case 1:
			return 0.0
		case 2:
			return 1.5e-7
		case 3:
			// +0, not -0, for 0: MariaDB stores -0 as 0, so a refetched
			// row would print "0" where FormatText prints "-0".
			return 0 - float64(r.IntN(1000))/8
		}
		return float64(r.IntN(100000)) / 100
	case "users.created":
		return g.base.Add(-time.Duration(r.Int64N(5*365*24*3600*1000)) * time.Millisecond)
	case "users.birthday":
		return time.Date(1950+r.IntN(60), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	case "users.avatar":
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return b
	case "users.prefs":
		return cdc.JSON(prefsTexts[r.IntN(len(prefsTexts))])
	case "users.status":
		return statuses[r.IntN(len(statuses))]
	case "users.tags":
		set := cdc.Set{}
		m := r.IntN(16)
		for i, l := range tagLabels {
			if m&(1<<i) != 0 {
				set = append(set, l)
			}
		}
		return set
	case "items.qty":
		return r.Int64N(2000) - 100
	case "items.price":
		return decimal(r.Int64N(10_000_000), 2)
	case "items.note":
		return notes[r.IntN(len(notes))]
	}
	panic("changegen: no generator for " + t.Name + "." + d.Name)
}

// decimal renders unscaled×10^-scale as MySQL prints a DECIMAL(p,scale).
func decimal(unscaled int64, scale int) cdc.Decimal {
	neg := unscaled < 0
	if neg {
		unscaled = -unscaled
	}
	s := fmt.Sprintf("%0*d", scale+1, unscaled)
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return cdc.Decimal(s)
}

// KeyOf renders the primary-key values of row joined by ":", the {pk} of
// a key template.
func KeyOf(t *Table, row *cdc.Row) string {
	parts := make([]string, len(t.PK))
	for i, c := range t.PK {
		parts[i], _ = cdc.FormatText(t.Column(c), row.Get(c))
	}
	return strings.Join(parts, ":")
}

// RedisKey is the default redis_hash key "{db}_{table}_{pk}" of row,
// behind prefix.
func RedisKey(prefix string, t *Table, row *cdc.Row) string {
	return prefix + t.DB + "_" + t.Name + "_" + KeyOf(t, row)
}

// Hash is the Redis hash of row: every non-NULL column in MySQL text form
// (cdc.FormatText), as the redis projector writes it.
func Hash(t *Table, row *cdc.Row) map[string]string {
	h := make(map[string]string, row.Len())
	for i := range t.cols {
		c := &t.cols[i]
		if s, ok := cdc.FormatText(c, row.Get(c.Name)); ok {
			h[c.Name] = s
		}
	}
	return h
}

// Expected returns the Redis hashes the final state must leave, by key,
// for the key template prefix+"{db}_{table}_{pk}".
func (s *Set) Expected(prefix string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for t, rows := range s.Final {
		for _, row := range rows {
			out[RedisKey(prefix, t, row)] = Hash(t, row)
		}
	}
	return out
}

// Partition is where canal's partitionHash "db.table:$pk$" puts row among n
// partitions (spec section 3, canal.mq.database.hash=true): the Java
// String.hashCode of the database XOR that of each key value's text.
func Partition(t *Table, row *cdc.Row, n int) int {
	if n <= 1 {
		return 0
	}
	h := javaHash(t.DB)
	for _, c := range t.PK {
		s, _ := canalText(t.Column(c), row.Get(c))
		h ^= javaHash(s)
	}
	// Java: Math.abs(Math.abs(h) % n); Math.abs(MinInt32) stays negative
	// and % keeps the dividend's sign.
	a := h
	if a < 0 && a != math.MinInt32 {
		a = -a
	}
	p := a % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}

// javaHash is Java's String.hashCode over UTF-16 code units.
func javaHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// baseTime is the commit time of the first change.
var baseTime = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
