package refetch

import (
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/rowsync/rowsync/cdc"
)

// TestCursorSeekNextInReadKeys: a cursor resumes after a saved key (After
// then Seek on a new cursor), reads through a caller's connection, and
// reads a list of keys, reporting the ones without a row.
func TestCursorSeekNextInReadKeys(t *testing.T) {
	s, _ := schema(t, "scan_resume",
		"CREATE TABLE $S.t (a INT, b VARCHAR(5), v INT, PRIMARY KEY (a, b))",
		"INSERT INTO $S.t VALUES (1,'x',1),(1,'y',2),(2,'x',3),(3,'z',4)",
		"CREATE TABLE $S.nokey (v INT)")
	r := newRefetcher(t, Config{})
	ctx := ctxT(t)
	c, err := r.Scan(ctx, s, "t", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.Next(ctx); err != nil {
		t.Fatal(err)
	}
	saved := c.After()
	if !slices.Equal(saved, []string{"1", "y"}) {
		t.Fatalf("After = %q", saved)
	}
	conn, err := r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c2, err := r.Scan(ctx, s, "t", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Seek(saved); err != nil {
		t.Fatal(err)
	}
	rows, _, err := c2.NextIn(ctx, conn, " LOCK IN SHARE MODE")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Get("v") != int64(3) || rows[1].Get("v") != int64(4) {
		t.Fatalf("rows after %q: %v", saved, rows)
	}
	if _, _, err := c2.NextIn(ctx, conn, ""); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	if err := c2.Seek([]string{"1"}); err == nil {
		t.Fatal("Seek with one value of a two-column key worked")
	}

	found, missing, bad, err := c.ReadKeys(ctx, conn, "", [][]string{{"2", "x"}, {"9", "q"}, {"2", "x"}})
	if err != nil || len(bad) > 0 {
		t.Fatal(err, bad)
	}
	if len(found) != 1 || found[0].Get("v") != int64(3) {
		t.Fatalf("found %v", found)
	}
	if want := []*cdc.Row{cdc.RowOf("a", int64(9), "b", "q")}; !rowsEqual(missing, want) {
		t.Fatalf("missing %v, want %v", missing, want)
	}
	// the same key from a text source and from a typed one
	k1, ok1 := c.KeyOf(cdc.RowOf("a", "2", "b", "x", "v", nil))
	k2, ok2 := c.KeyOf(found[0])
	if !ok1 || !ok2 || k1 != k2 {
		t.Fatalf("KeyOf: %q %v, %q %v", k1, ok1, k2, ok2)
	}
	if _, ok := c.KeyOf(cdc.RowOf("a", int64(1))); ok {
		t.Fatal("KeyOf without b worked")
	}

	nk, err := r.Scan(ctx, s, "nokey", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer nk.Close()
	if _, _, err := nk.NextIn(ctx, conn, ""); !errors.Is(err, ErrNoKey) {
		t.Fatalf("keyless NextIn: %v", err)
	}
}
