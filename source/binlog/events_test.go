package binlog

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowsync/rowsync/cdc"
)

// bareSource is a Source for feeding events by hand.
func bareSource(t *testing.T, include ...string) *Source {
	t.Helper()
	filter, err := newTableFilter(include, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Source{cfg: Config{}.withDefaults(), log: testLogger(t), filter: filter, flavor: mysql.MySQLFlavor,
		tables: map[string]*cdc.TableDef{}, plans: map[string]*plan{}, file: "bin.000001"}
}

// Nothing that may carry rows is skipped: an event type the source does
// not know, an incident, or a statement-logged change of a watched table
// stops the stream with an error naming it.
func TestUnreadableEventsStop(t *testing.T) {
	hdr := func(tp replication.EventType, flags uint16) *replication.EventHeader {
		return &replication.EventHeader{EventType: tp, LogPos: 500, EventSize: 100, Flags: flags}
	}
	tests := []struct {
		name string
		ev   *replication.BinlogEvent
		want string // "" means handled without error
	}{
		{"future event type", &replication.BinlogEvent{Header: hdr(250, 0), Event: &replication.GenericEvent{}}, "type 250"},
		{"incident", &replication.BinlogEvent{Header: hdr(replication.INCIDENT_EVENT, 0), Event: &replication.GenericEvent{}}, "IncidentEvent"},
		{"old load data", &replication.BinlogEvent{Header: hdr(replication.EXEC_LOAD_EVENT, 0), Event: &replication.GenericEvent{}}, "ExecLoadEvent"},
		{"ignorable future type", &replication.BinlogEvent{Header: hdr(251, logEventIgnorable), Event: &replication.GenericEvent{}}, ""},
		{"view change", &replication.BinlogEvent{Header: hdr(replication.VIEW_CHANGE_EVENT, 0), Event: &replication.GenericEvent{}}, ""},
		{"statement insert, watched", &replication.BinlogEvent{Header: hdr(replication.QUERY_EVENT, 0),
			Event: &replication.QueryEvent{Schema: []byte("shop"), Query: []byte("INSERT INTO orders VALUES (1)")}}, "shop.orders"},
		{"statement update, other schema", &replication.BinlogEvent{Header: hdr(replication.QUERY_EVENT, 0),
			Event: &replication.QueryEvent{Schema: []byte("shop"), Query: []byte("UPDATE other.t SET a=1")}}, ""},
		{"statement multi-table delete", &replication.BinlogEvent{Header: hdr(replication.QUERY_EVENT, 0),
			Event: &replication.QueryEvent{Schema: []byte("x"), Query: []byte("DELETE a FROM a JOIN b")}}, "cannot tell"},
		{"load data query", &replication.BinlogEvent{Header: hdr(replication.EXECUTE_LOAD_QUERY_EVENT, 0),
			Event: &replication.ExecuteLoadQueryEvent{}}, "LOAD DATA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bareSource(t, `shop\..*`, `x\..*`)
			err := s.handle(context.Background(), tt.ev)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "bin.000001:400") {
				t.Fatalf("err %v, want ErrUnsupported naming %q at bin.000001:400", err, tt.want)
			}
		})
	}
}

// XA PREPARE ends the first phase of an XA transaction: a boundary.
func TestXAPrepareEndsTransaction(t *testing.T) {
	s := bareSource(t)
	s.inTx = true
	ev := &replication.BinlogEvent{Header: &replication.EventHeader{EventType: replication.XA_PREPARE_LOG_EVENT, LogPos: 900, EventSize: 50},
		Event: &replication.GenericEvent{}}
	if err := s.handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if s.inTx || s.txEnd.Offset != 900 {
		t.Fatalf("inTx %v, tx end %v", s.inTx, s.txEnd)
	}
}

// A compressed transaction arrives as one event and may end past
// BatchSize: its rows go in one batch with its checkpoint, never split
// with the checkpoint covering rows left for the next batch.
func TestCompressedTransactionNotSplit(t *testing.T) {
	s := bareSource(t)
	s.cfg.BatchSize = 3
	s.cur = make([]cdc.Event, 5)
	s.endTx(700, false) // the payload's end, after its five rows
	b := s.cut()
	if len(b.Events) != 5 || len(s.cur) != 0 {
		t.Fatalf("batch of %d, %d left", len(b.Events), len(s.cur))
	}

	// an ordinary rows event past BatchSize, inside an open transaction:
	// split, the checkpoint stays at the last end before it
	s.cur = make([]cdc.Event, 5)
	s.curTxIdx = 0
	b = s.cut()
	if len(b.Events) != 3 || len(s.cur) != 2 {
		t.Fatalf("batch of %d, %d left", len(b.Events), len(s.cur))
	}
}
