package binlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/internal/sourcetest"
)

// TestRowsKeptUntilAck reads tables of 2, 15 and 4 columns through a
// source whose batches (50 events, so multi-row events are split across
// two of them) are acked three batches late, from another goroutine: no
// batch changes before its ack although later ones are decoded into the
// recycled maps of acked ones (sourcetest.Held; -race), and every row is
// right: each before image is the row as the events before left it, and
// the rows end as MySQL has them.
func TestRowsKeptUntilAck(t *testing.T) {
	db, schema := testDB(t)
	var wide, wideVals []string
	for i := 1; i <= 14; i++ {
		wide = append(wide, fmt.Sprintf("c%d INT", i))
	}
	mustExec(t, db, "CREATE TABLE narrow (id INT PRIMARY KEY, v VARCHAR(16))")
	mustExec(t, db, "CREATE TABLE wide (id INT PRIMARY KEY, "+strings.Join(wide, ", ")+")")
	mustExec(t, db, "CREATE TABLE mixed (id INT PRIMARY KEY, t TEXT, d DECIMAL(10,2), at DATETIME(3))")
	s := newSource(t, schema, nil, func(c *Config) { c.BatchSize = 50 })

	var q strings.Builder
	events := 0
	values := func(table string, from, n int, row func(id int) string) {
		q.Reset()
		fmt.Fprintf(&q, "INSERT INTO %s VALUES ", table)
		for id := from; id < from+n; id++ {
			if id > from {
				q.WriteByte(',')
			}
			q.WriteString(row(id))
		}
		mustExec(t, db, q.String())
		events += n
	}
	for k := range 5 {
		values("wide", k*40, 40, func(id int) string {
			wideVals = wideVals[:0]
			for c := 1; c <= 14; c++ {
				wideVals = append(wideVals, fmt.Sprint(id*100+c))
			}
			return fmt.Sprintf("(%d,%s)", id, strings.Join(wideVals, ","))
		})
		values("narrow", k*30, 30, func(id int) string { return fmt.Sprintf("(%d,'n%d')", id, id) })
		values("mixed", k*10, 10, func(id int) string {
			return fmt.Sprintf("(%d,'text %d',%d.%02d,'2024-05-01 10:00:%02d.123')", id, id, id, id%100, id%60)
		})
	}
	mustExec(t, db, "UPDATE wide SET c1 = c1 + 1, c14 = NULL")
	mustExec(t, db, "UPDATE narrow SET v = CONCAT(v, 'x') WHERE id % 2 = 0")
	mustExec(t, db, "DELETE FROM mixed WHERE id < 15")
	events += 200 + 75 + 15
	for i := range 20 {
		mustExec(t, db, fmt.Sprintf("BEGIN; INSERT INTO narrow VALUES (%d, 'late'); UPDATE wide SET c2 = c2 + 1 WHERE id = %d; "+
			"UPDATE mixed SET t = NULL WHERE id = %d; COMMIT", 1000+i, i, 15+i))
		events += 3
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	got := sourcetest.Held(ctx, t, s, events, 3)
	if len(got) != events {
		t.Fatalf("%d events, want %d", len(got), events)
	}
	// the maps of four batches are in use at once (three held, one read)
	if reused, made := s.rowPool.Stats(); reused == 0 {
		t.Errorf("row maps reused %d, made %d: the acked batches' maps were not recycled", reused, made)
	}
	checkRows(t, db, got, map[string]int{"narrow": 2, "wide": 15, "mixed": 4})
}

// checkRows applies events to tables' rows (in text form, keyed by id):
// each before image must be the row as the events before left it, each
// image complete, and the rows at the end as db holds them.
func checkRows(t *testing.T, db *sql.DB, events []cdc.Event, columns map[string]int) {
	t.Helper()
	text := func(ev *cdc.Event, r *cdc.Row) map[string]string {
		if r.Len() != columns[ev.Table] {
			t.Fatalf("%s %s.%s at %s: image of %d columns, want %d: %v", ev.Op, ev.DB, ev.Table, ev.Pos, r.Len(), columns[ev.Table], r)
		}
		out := map[string]string{}
		for _, c := range ev.Columns {
			if s, ok := cdc.FormatText(&c, r.Get(c.Name)); ok {
				out[c.Name] = s
			}
		}
		return out
	}
	state := map[string]map[string]map[string]string{}
	for i := range events {
		ev := &events[i]
		rows := state[ev.Table]
		if rows == nil {
			rows = map[string]map[string]string{}
			state[ev.Table] = rows
		}
		if ev.Before != nil {
			b := text(ev, ev.Before)
			if !reflect.DeepEqual(rows[b["id"]], b) {
				t.Fatalf("event %d (%s %s at %s): before %v, the row was %v", i, ev.Op, ev.Table, ev.Pos, b, rows[b["id"]])
			}
			delete(rows, b["id"])
		}
		if ev.After != nil {
			a := text(ev, ev.After)
			rows[a["id"]] = a
		}
	}
	for table := range columns {
		rs, err := db.Query("SELECT * FROM " + table)
		if err != nil {
			t.Fatal(err)
		}
		names, _ := rs.Columns()
		n := 0
		for rs.Next() {
			vals := make([]sql.NullString, len(names))
			ptrs := make([]any, len(names))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for i, v := range vals {
				if v.Valid {
					want[names[i]] = v.String
				}
			}
			if got := state[table][want["id"]]; !reflect.DeepEqual(got, want) {
				t.Errorf("%s row %s: events give %v, MySQL has %v", table, want["id"], got, want)
			}
			n++
		}
		rs.Close()
		if n != len(state[table]) {
			t.Errorf("%s: events leave %d rows, MySQL has %d", table, len(state[table]), n)
		}
	}
}

// replaySource hands out a recorded file's events as batches of about per
// events, cut as the stream's batches are (Source.cut), so their acks
// recycle the row maps.
type replaySource struct {
	s   *Source
	evs []*replication.BinlogEvent
	per int
}

func (r *replaySource) Next(ctx context.Context) (cdc.Batch, error) {
	for len(r.s.cur) < r.per && len(r.evs) > 0 {
		if err := r.s.handle(ctx, r.evs[0]); err != nil {
			return cdc.Batch{}, err
		}
		r.evs = r.evs[1:]
	}
	if len(r.s.cur) == 0 && len(r.s.curRejects) == 0 {
		return cdc.Batch{}, io.EOF
	}
	return r.s.cut(), nil
}

func (r *replaySource) Close(context.Context) error { return r.s.saver.Close(context.Background()) }

// TestRecordedRowsKeptUntilAck replays the recorded MySQL 8 files in
// batches of two or three events acked three batches late, with both
// decoders (the JSON tables always take go-mysql's): every batch stays as
// it was until its ack, and the events are those of a replay that
// recycles nothing.
func TestRecordedRowsKeptUntilAck(t *testing.T) {
	files := []string{"binlog-invisible-columns.000001", "binlog_transaction_with_GTID_TAG.000001", "json.binlog.000001",
		"mysql-enum-string-set.000001", "mysql_type_bit.000001", "time_issue.000001", "transaction_compression.000001",
		"vector.binlog"}
	for _, name := range files {
		for _, own := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/own=%v", name, own), func(t *testing.T) {
				var tables map[string]*cdc.TableDef
				if name == "json.binlog.000001" { // its partial update needs the names
					tables = map[string]*cdc.TableDef{"mysql.t": table([]string{"id"},
						"id int", "json_col json", "name varchar(100)", "age int")}
				}
				goMySQLRows = !own
				want := replay(t, name, tables, Config{}, "")
				goMySQLRows = false
				if want.err != nil || len(want.events) == 0 {
					t.Fatalf("replay: %d events, %v", len(want.events), want.err)
				}
				cfg := Config{Include: []string{`.*\..*`}}.withDefaults()
				filter, err := newTableFilter(cfg.Include, nil)
				if err != nil {
					t.Fatal(err)
				}
				s := &Source{cfg: cfg, log: testLogger(t), filter: filter, flavor: mysql.MySQLFlavor,
					tables: map[string]*cdc.TableDef{}, plans: map[string]*plan{}, file: name,
					saver: checkpoint.NewSaver(nil, 0, checkpoint.Position{})}
				s.load = func(_ context.Context, db, table string) (*cdc.TableDef, error) {
					if ti, ok := tables[db+"."+table]; ok {
						return ti, nil
					}
					return dropped(), nil
				}
				p := replication.NewBinlogParser()
				p.SetFlavor(mysql.MySQLFlavor)
				p.SetParseTime(true)
				p.SetTimestampStringLocation(time.UTC)
				p.SetUseDecimal(false)
				p.SetRenderJSONAsMySQLText(true)
				if own {
					p.SetRowsEventDecodeFunc(decodeRowsHeader)
				}
				src := &replaySource{s: s, per: 2}
				if err := p.ParseFile(filepath.Join("testdata", "mysql8", name), 4, func(ev *replication.BinlogEvent) error {
					src.evs = append(src.evs, ev)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				defer src.Close(context.Background())
				got := sourcetest.Held(context.Background(), t, src, len(want.events), 3)
				if !sourcetest.SameEvents(got, want.events) {
					t.Fatalf("events differ from a replay without recycling:\n got %+v\nwant %+v", got, want.events)
				}
				if _, err := src.Next(context.Background()); !errors.Is(err, io.EOF) {
					t.Fatalf("after the file: %v", err)
				}
			})
		}
	}
}
