package maxwell

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
)

// memSchemas is a schema source over definitions held in memory: what the
// database would answer at each read, and how it was asked.
type memSchemas struct {
	mu               sync.Mutex
	defs             map[string]*cdc.TableDef // what a read returns now
	reads, refreshes int
	forgot           []string
}

func (m *memSchemas) Table(_ context.Context, db, table string, refresh bool) (*cdc.TableDef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if refresh {
		m.refreshes++
	}
	return m.defs[db+"."+table], nil
}

func (m *memSchemas) Forget(db, table string) {
	m.mu.Lock()
	m.forgot = append(m.forgot, db+"."+table)
	m.mu.Unlock()
}

func def(pk []string, cols ...string) *cdc.TableDef {
	var cc []cdc.Column
	for i := 0; i+1 < len(cols); i += 2 {
		cc = append(cc, cdc.ParseColumnType(cols[i], cols[i+1]))
	}
	return cdc.NewTableDef(cc, pk)
}

func TestSchemaSource(t *testing.T) {
	sc := &memSchemas{defs: map[string]*cdc.TableDef{"shop.t": def([]string{"id"},
		"id", "int(11)", "amount", "decimal(12,2)", "bin", "binary(4)", "at", "datetime(3)", "tags", "set('a','b')")}}
	d, _ := New(decode.Options{Schemas: sc})
	msg := func(data string) decode.Message {
		return decode.Message{Value: []byte(`{"database":"shop","table":"t","type":"insert","ts":1,"data":` + data + `}`)}
	}
	t.Run("typed by the definition", func(t *testing.T) {
		evs, err := d.Decode(msg(`{"id":1,"amount":1234.5,"bin":"YWI=","at":"2024-01-02 03:04:05.678","tags":["a"]}`))
		if err != nil {
			t.Fatal(err)
		}
		want := cdc.RowOf("id", int64(1), "amount", cdc.Decimal("1234.50"), "bin", []byte("ab\x00\x00"), "at", time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC), "tags", cdc.Set{"a"})
		if !evs[0].After.Equal(want) {
			t.Errorf("after %#v, want %#v", evs[0].After.Map(), want.Map())
		}
		if !reflect.DeepEqual(evs[0].PK, []string{"id"}) || len(evs[0].Columns) != 5 {
			t.Errorf("pk %v, %d columns; want the definition's", evs[0].PK, len(evs[0].Columns))
		}
	})
	t.Run("unknown column read again once", func(t *testing.T) {
		before := sc.refreshes
		if _, err := d.Decode(msg(`{"id":1,"extra":2}`)); err == nil || !strings.Contains(err.Error(), "column extra: not in the table's definition") {
			t.Errorf("err = %v", err)
		}
		if sc.refreshes != before+1 {
			t.Errorf("%d refreshes, want 1", sc.refreshes-before)
		}
		sc.mu.Lock()
		sc.defs["shop.t"] = def([]string{"id"}, "id", "int(11)", "extra", "int(11)") // the ALTER the message follows
		sc.mu.Unlock()
		evs, err := d.Decode(msg(`{"id":1,"extra":2}`))
		if err != nil || evs[0].After.Get("extra") != int64(2) {
			t.Errorf("after the refresh: %v, %v", evs, err)
		}
	})
	t.Run("contradiction", func(t *testing.T) {
		sc.mu.Lock()
		sc.defs["shop.t"] = def([]string{"id"}, "id", "int(11)", "at", "datetime(3)")
		sc.mu.Unlock()
		if _, err := d.Decode(msg(`{"id":1,"at":"yesterday"}`)); err == nil || !strings.Contains(err.Error(), "column at") {
			t.Errorf("err = %v, want the column named", err)
		}
	})
	t.Run("no such table", func(t *testing.T) {
		m := decode.Message{Value: []byte(`{"database":"shop","table":"gone","type":"insert","ts":1,"data":{"id":1}}`)}
		if _, err := d.Decode(m); err == nil || !strings.Contains(err.Error(), "no such table") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("dropped table typed by its DDL message", func(t *testing.T) {
		ddl := `{"type":"table-create","database":"shop","table":"old","def":{"database":"shop","table":"old",` +
			`"columns":[{"type":"int","name":"id"},{"type":"date","name":"day"}],"primary-key":["id"]},"ts":1}`
		if _, err := d.Decode(decode.Message{Value: []byte(ddl)}); err != nil {
			t.Fatal(err)
		}
		evs, err := d.Decode(decode.Message{Value: []byte(`{"database":"shop","table":"old","type":"insert","ts":1,"data":{"id":1,"day":"2024-02-29"}}`)})
		if err != nil {
			t.Fatal(err)
		}
		if got := evs[0].After.Get("day"); got != time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC) {
			t.Errorf("day = %#v, want the DDL's DATE type", got)
		}
		sc.forgot = nil
	})
	t.Run("DDL forgets the definition", func(t *testing.T) {
		ddl := `{"type":"table-alter","database":"shop","table":"t","def":{"database":"shop","table":"t","columns":[{"type":"int","name":"id"}],"primary-key":["id"]},"ts":1}`
		if _, err := d.Decode(decode.Message{Value: []byte(ddl)}); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sc.forgot, []string{"shop.t"}) {
			t.Errorf("forgot %v", sc.forgot)
		}
	})
}
