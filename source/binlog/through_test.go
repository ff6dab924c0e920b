package binlog

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// masterStatus is the server's binlog end now.
func masterStatus(t *testing.T) (string, uint64) {
	t.Helper()
	db := dbOpen(t, "")
	defer db.Close()
	var file, pos, a, b string
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &a, &b); err != nil {
		t.Fatal(err)
	}
	off, _ := strconv.ParseUint(pos, 10, 64)
	return file, off
}

// masterVersion is the server's binlog end now, as a cdc version.
func masterVersion(t *testing.T) uint64 {
	t.Helper()
	return cdc.BinlogPosVersion(masterStatus(t))
}

// TestThrough: every batch's Through covers its events, and it reaches the
// server's binlog end, also after a rotation whose new file starts with
// events that end no transaction (what a backfill's watermark waits for).
func TestThrough(t *testing.T) {
	db, schema := testDB(t)
	mustExec(t, db, "CREATE TABLE th (id INT PRIMARY KEY, v INT)")
	s := newSource(t, schema, nil, func(c *Config) { c.IdleAck = 50 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	mustExec(t, db, "INSERT INTO th VALUES (1, 1), (2, 2)")
	mustExec(t, db, "UPDATE th SET v = 3 WHERE id = 1")
	// reach wants a batch with Through >= want, checking every batch on
	// the way covers its own events.
	reach := func(want uint64) {
		t.Helper()
		for {
			b, err := s.Next(ctx)
			if err != nil {
				t.Fatalf("next waiting for Through %d: %v", want, err)
			}
			for _, ev := range b.Events {
				if b.Through < ev.Pos.Version {
					t.Fatalf("batch Through %d below its event at %s (%d)", b.Through, ev.Pos, ev.Pos.Version)
				}
			}
			if err := b.Ack(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if b.Through >= want {
				return
			}
		}
	}
	reach(masterVersion(t))
	mustExec(t, db, "FLUSH BINARY LOGS")
	reach(masterVersion(t))
}
