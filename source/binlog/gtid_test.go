package binlog

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// TestMySQLGTIDText checks that untagged and tagged (8.3+) GTID events both
// enter the saved set.
func TestMySQLGTIDText(t *testing.T) {
	sid := []byte{0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62}
	plain := &replication.GTIDEvent{SID: sid, GNO: 78}
	tagged := &replication.GtidTaggedLogEvent{GTIDEvent: replication.GTIDEvent{SID: sid, GNO: 6, Tag: mysql.NewTag("Nightly")}}
	if got := mysqlGTID(plain); got != "3e11fa47-71ca-11e1-9e33-c80aa9429562:78" {
		t.Fatalf("plain: %s", got)
	}
	if got := mysqlGTID(&tagged.GTIDEvent); got != "3e11fa47-71ca-11e1-9e33-c80aa9429562:nightly:6" {
		t.Fatalf("tagged: %s", got)
	}
	gs, err := mysql.ParseGTIDSet(mysql.MySQLFlavor, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77:nightly:1-5")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{mysqlGTID(plain), mysqlGTID(&tagged.GTIDEvent)} {
		if err := gs.Update(g); err != nil {
			t.Fatalf("update %s: %v", g, err)
		}
	}
	if got := gs.String(); got != "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-78:nightly:1-6" {
		t.Fatalf("set: %s", got)
	}
}

// TestMariaDBGTIDEntersSet: a MariaDB transaction's GTID, kept as the event
// gives it, enters the saved set as its text did through Update: a new
// domain added, a known one moved forward, the all-zero GTID (which
// formats as "") ignored.
func TestMariaDBGTIDEntersSet(t *testing.T) {
	gs, err := mysql.ParseGTIDSet(mysql.MariaDBFlavor, "0-1-5,2-7-9")
	if err != nil {
		t.Fatal(err)
	}
	s := &Source{log: testLogger(t), gset: gs}
	for _, g := range []mysql.MariadbGTID{{DomainID: 0, ServerID: 3, SequenceNumber: 6}, {DomainID: 1, ServerID: 1, SequenceNumber: 1}, {}} {
		s.pendingMaria = g
		s.endTx(100, true)
		if s.pendingMaria != (mysql.MariadbGTID{}) {
			t.Fatal("pending GTID kept after the transaction's end")
		}
	}
	if got := s.gset.String(); got != "0-3-6,1-1-1,2-7-9" {
		t.Fatalf("set: %s", got)
	}
	// without a set, or at a non-GTID end, nothing is recorded
	s.gset, s.pendingMaria = nil, mysql.MariadbGTID{DomainID: 4, ServerID: 1, SequenceNumber: 1}
	s.endTx(200, true)
	s.gset, _ = mysql.ParseGTIDSet(mysql.MariaDBFlavor, "0-1-5")
	s.pendingMaria = mysql.MariadbGTID{DomainID: 4, ServerID: 1, SequenceNumber: 1}
	s.endTx(300, false)
	if got := s.gset.String(); got != "0-1-5" {
		t.Fatalf("set after a non-GTID end: %s", got)
	}
}
