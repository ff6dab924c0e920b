package decode

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// fixed returns the same events for every message.
type fixed []cdc.Event

func (f fixed) Decode(Message) ([]cdc.Event, error) { return f, nil }

func TestBoundedRejectsWithReason(t *testing.T) {
	good := func() cdc.Event {
		return cdc.Event{DB: "shop", Table: "users", Op: cdc.Insert, PK: []string{"id"},
			After: cdc.RowOf("id", int64(1), "doc", cdc.JSON(`{"a":[1]}`)), Pos: cdc.Position{Text: "t/0@1"}}
	}
	with := func(f func(*cdc.Event)) []cdc.Event { e := good(); f(&e); return []cdc.Event{e} }
	wide := cdc.RowOf("id", int64(1))
	for i := range MaxColumns {
		wide.Set("c"+strconv.Itoa(i), nil)
	}
	many := make([]cdc.Event, DefaultMaxRows+1)
	for i := range many {
		many[i] = good()
	}
	cases := map[string]struct {
		evs  []cdc.Event
		msg  Message
		opts Options
		want string
	}{
		"control char in table":  {evs: with(func(e *cdc.Event) { e.Table = "t\a" }), want: `table name "t\a" holds a control character`},
		"invalid utf8 db":        {evs: with(func(e *cdc.Event) { e.DB = "d\xff" }), want: "database name \"d\\xff\" is not valid UTF-8"},
		"replacement char":       {evs: with(func(e *cdc.Event) { e.DB = "d\ufffd" }), want: "U+FFFD"},
		"long table name":        {evs: with(func(e *cdc.Event) { e.Table = strings.Repeat("é", 65) }), want: "longer than MySQL's 64 characters"},
		"control char in column": {evs: with(func(e *cdc.Event) { e.After.Set("a\x00", int64(1)) }), want: "column name"},
		"control char in pos":    {evs: with(func(e *cdc.Event) { e.Pos.Text = "bin.1:\x1b[2J" }), want: "position"},
		"object key":             {evs: with(func(e *cdc.Event) { e.After.Set("id", cdc.JSON(`{"$ne":null}`)) }), want: `primary key column "id": a JSON value is not a scalar key`},
		"set key":                {evs: with(func(e *cdc.Event) { e.After.Set("id", cdc.Set{"a"}) }), want: "a SET value"},
		"configured key object": {evs: with(func(e *cdc.Event) { e.PK = nil; e.After.Set("id", cdc.JSON(`{"$gt":""}`)) }),
			opts: Options{KeyColumns: func(db, table string) []string { return []string{"id"} }}, want: `primary key column "id": a JSON value`},
		"null key":       {evs: with(func(e *cdc.Event) { e.After.Set("id", nil) }), want: `primary key column "id" missing or NULL`},
		"deep json":      {evs: with(func(e *cdc.Event) { e.After.Set("doc", cdc.JSON(strings.Repeat("[", 101)+strings.Repeat("]", 101))) }), want: "column doc: JSON nested deeper than MySQL's 100 levels"},
		"too many cols":  {evs: with(func(e *cdc.Event) { e.After = wide }), want: "more than 4096 columns"},
		"too many rows":  {evs: many, want: "more than 10000 rows in one message (max_rows)"},
		"row cap option": {evs: many[:3], opts: Options{Limits: Limits{MaxRows: 2}}, want: "more than 2 rows"},
		"big message":    {evs: with(func(*cdc.Event) {}), msg: Message{Value: make([]byte, 100)}, opts: Options{Limits: Limits{MaxMessageBytes: 99}}, want: "message of 100 bytes exceeds max_message_bytes 99"},
		"no after":       {evs: with(func(e *cdc.Event) { e.After = nil; e.Before = cdc.RowOf("id", int64(1)) }), want: "insert without an after image"},
		"bad op":         {evs: with(func(e *cdc.Event) { e.Op = 9 }), want: "unknown op 9"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Bounded(fixed(c.evs), c.opts).Decode(c.msg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want containing %q", err, c.want)
			}
		})
	}
	ok := []cdc.Event{good(), with(func(e *cdc.Event) {
		e.Op, e.Before, e.After = cdc.Update, nil, cdc.RowOf("id", "k", "t", time.Now(), "b", []byte{0}, "é🚀 name", cdc.Decimal("1.5"))
	})[0]}
	if _, err := Bounded(fixed(ok), Options{}).Decode(Message{}); err != nil {
		t.Fatalf("good events rejected: %v", err)
	}
	if err := (Limits{MaxRows: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "max_rows") {
		t.Fatalf("Validate: %v", err)
	}
}

// BenchmarkCheckEvents is the boundary's cost per row of a 10-column
// update: go test ./source/decode -run '^$' -bench CheckEvents
func BenchmarkCheckEvents(b *testing.B) {
	cols := make([]cdc.Column, 10)
	row := cdc.RowOf()
	for i := range cols {
		cols[i] = cdc.Column{Name: "column_" + strconv.Itoa(i), Kind: cdc.KindString}
		row.Set(cols[i].Name, "value")
	}
	row.Set("column_0", int64(7))
	evs := []cdc.Event{{DB: "shop", Table: "order_item", Op: cdc.Update, PK: []string{"column_0"}, Columns: cols,
		Before: row, After: row, Pos: cdc.Position{Text: "mysql-bin.000003:4711"}}}
	var l Limits
	for b.Loop() {
		if err := l.CheckEvents(evs, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/row")
}

// TestCheckEventsLaterRows: what CheckEvents skips in a message's later
// events (names, position, layout and key already checked in an earlier
// one) is only what they share with it; what differs is checked.
func TestCheckEventsLaterRows(t *testing.T) {
	l, err := cdc.NewLayout([]string{"id", "a\x00", "doc"})
	if err != nil {
		t.Fatal(err)
	}
	pk := []string{"id"}
	ev := func(id, a, doc cdc.Value) cdc.Event {
		r := cdc.NewRow(l)
		r.SetAt(0, id)
		if a != nil {
			r.SetAt(1, a)
		}
		if doc != nil {
			r.SetAt(2, doc)
		}
		return cdc.Event{DB: "shop", Table: "t", Op: cdc.Insert, PK: pk, After: r, Pos: cdc.Position{Text: "t/0@1"}}
	}
	ok := ev(int64(1), nil, cdc.JSON(`[1]`))
	moved := ev(int64(2), nil, nil)
	moved.Pos.Text = "t/0@\x1b"
	for name, c := range map[string]struct {
		evs  []cdc.Event
		want string
	}{
		"column the first row lacks": {[]cdc.Event{ok, ev(int64(2), "x", nil)}, "row 1: column name"},
		"deep json in a later row":   {[]cdc.Event{ok, ev(int64(2), nil, cdc.JSON(strings.Repeat("[", 101)+strings.Repeat("]", 101)))}, "row 1: column doc: JSON nested"},
		"null key in a later row":    {[]cdc.Event{ok, ev(nil, nil, nil)}, `row 1: primary key column "id" missing or NULL`},
		"object key in a later row":  {[]cdc.Event{ok, ev(cdc.JSON(`{}`), nil, nil)}, "row 1: primary key column \"id\": a JSON value"},
		"another position":           {[]cdc.Event{ok, moved}, "row 1: position"},
	} {
		t.Run(name, func(t *testing.T) {
			err := Limits{}.CheckEvents(c.evs, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want containing %q", err, c.want)
			}
		})
	}
	if err := (Limits{}).CheckEvents([]cdc.Event{ok, ok, ev(int64(3), nil, nil)}, nil); err != nil {
		t.Fatalf("good events rejected: %v", err)
	}
}

// TestBoundedKnownLayouts: the boundary skips, in later messages, the
// names of a shared layout an earlier message carried whole; a row's own
// layout, which changes with the row, is checked every time, and so is a
// shared layout no message carried whole.
func TestBoundedKnownLayouts(t *testing.T) {
	l, err := cdc.NewLayout([]string{"id", "name"})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := cdc.NewLayout([]string{"id", "a\x00"})
	if err != nil {
		t.Fatal(err)
	}
	row := func(l *cdc.Layout, vals ...cdc.Value) *cdc.Row {
		r := cdc.NewRow(l)
		for i, v := range vals {
			r.SetAt(i, v)
		}
		return r
	}
	cols := []cdc.Column{{Name: "id"}, {Name: "name"}}
	var msgs []cdc.Event
	d := Bounded(decoderFunc(func(Message) ([]cdc.Event, error) { return msgs, nil }), Options{})
	decode := func(evs ...cdc.Event) error {
		msgs = evs
		_, err := d.Decode(Message{})
		return err
	}
	ev := func(r *cdc.Row, cols []cdc.Column) cdc.Event {
		return cdc.Event{DB: "shop", Table: "t", Op: cdc.Insert, PK: []string{"id"}, After: r, Columns: cols, Pos: cdc.Position{Text: "t/0@1"}}
	}
	for i := range 3 {
		if err := decode(ev(row(l, int64(i), "x"), cols)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	// Columns with other names than the known layout's are checked.
	if err := decode(ev(row(l, int64(1), "x"), []cdc.Column{{Name: "id"}, {Name: "n\x01"}})); err == nil || !strings.Contains(err.Error(), "column name") {
		t.Fatalf("bad event column: %v", err)
	}
	// A shared layout whose bad name no row carried is not known.
	if err := decode(ev(row(bad, int64(1)), nil)); err != nil {
		t.Fatalf("row without the bad column: %v", err)
	}
	if err := decode(ev(row(bad, int64(1), "x"), nil)); err == nil || !strings.Contains(err.Error(), "column name") {
		t.Fatalf("bad column in a later message: %v", err)
	}
	// A row's own layout is checked every time.
	own := cdc.RowOf("id", int64(1), "name", "x")
	if err := decode(ev(own, nil)); err != nil {
		t.Fatal(err)
	}
	own.Set("b\x02", "y")
	if err := decode(ev(own, nil)); err == nil || !strings.Contains(err.Error(), "column name") {
		t.Fatalf("own layout grown with a bad name: %v", err)
	}
	// More layouts than the boundary keeps: the oldest are forgotten (and
	// so checked again), the newest kept, never more than it holds.
	known := d.(*bounded).known
	if !known.has(l) {
		t.Fatal("the layout of three whole messages is not known")
	}
	var many []*cdc.Layout
	for i := range 40 {
		l, err := cdc.NewLayout([]string{"id", "c" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := decode(ev(row(l, int64(i), "x"), nil)); err != nil {
			t.Fatal(err)
		}
		many = append(many, l)
	}
	if known.has(l) || known.has(many[0]) || !known.has(many[len(many)-1]) {
		t.Fatalf("after 40 more layouts: first known %v, oldest of them %v, newest %v; want false, false, true", known.has(l), known.has(many[0]), known.has(many[len(many)-1]))
	}
	kept := 0
	for _, m := range many {
		if known.has(m) {
			kept++
		}
	}
	if kept != len(known.l) {
		t.Fatalf("%d layouts known, want %d", kept, len(known.l))
	}
	if err := decode(ev(row(bad, int64(1), "x"), nil)); err == nil {
		t.Fatal("bad layout accepted after many others")
	}
}

type decoderFunc func(Message) ([]cdc.Event, error)

func (f decoderFunc) Decode(m Message) ([]cdc.Event, error) { return f(m) }

// BenchmarkBoundedShared is the boundary's cost per message of one
// 10-column update whose rows share a layout kept across messages, as
// canal-json's and the binlog's rows do: go test ./source/decode -run '^$'
// -bench BoundedShared
func BenchmarkBoundedShared(b *testing.B) {
	cols := make([]cdc.Column, 10)
	names := make([]string, 10)
	for i := range cols {
		cols[i] = cdc.Column{Name: "column_" + strconv.Itoa(i), Kind: cdc.KindString}
		names[i] = cols[i].Name
	}
	l, err := cdc.NewLayout(names)
	if err != nil {
		b.Fatal(err)
	}
	row := cdc.NewRow(l)
	for i := range names {
		row.SetAt(i, "value")
	}
	row.SetAt(0, int64(7))
	evs := fixed{{DB: "shop", Table: "order_item", Op: cdc.Update, PK: []string{"column_0"}, Columns: cols,
		Before: row, After: row, Pos: cdc.Position{Text: "mysql-bin.000003:4711"}}}
	d := Bounded(evs, Options{})
	for b.Loop() {
		if _, err := d.Decode(Message{}); err != nil {
			b.Fatal(err)
		}
	}
}
