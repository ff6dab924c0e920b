package changegen

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
)

func TestShuffleOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		sh   Shuffle
		n    int
	}{
		{"window 64, 10% dups", Shuffle{Seed: 1, Window: 64, DupPercent: 10}, 20000},
		{"window 1 keeps order", Shuffle{Seed: 2, Window: 1}, 1000},
		{"default window", Shuffle{Seed: 3, DupPercent: 50}, 5000},
		{"empty", Shuffle{Seed: 4, Window: 8, DupPercent: 10}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.sh.Window
			if w <= 0 {
				w = 64
			}
			order := tc.sh.Order(tc.n)
			if !reflect.DeepEqual(order, tc.sh.Order(tc.n)) {
				t.Fatal("two calls with one seed differ")
			}
			first := map[int]int{} // index → first position
			seen := map[int]int{}
			moved := 0
			for pos, i := range order {
				seen[i]++
				if seen[i] > 2 {
					t.Fatalf("index %d appears %d times", i, seen[i])
				}
				if seen[i] == 2 {
					if d := pos - first[i]; d < 1 || d > 3*w {
						t.Errorf("duplicate of %d lands %d after it", i, d)
					}
					continue
				}
				first[i] = pos
			}
			if len(first) != tc.n {
				t.Fatalf("%d distinct indexes, want %d", len(first), tc.n)
			}
			// No message overtakes one Window or more ahead of it.
			firsts := make([]int, 0, tc.n)
			for _, i := range order {
				if seen[i] > 0 {
					firsts = append(firsts, i)
					seen[i] = 0
				}
			}
			maxSoFar := -1
			for _, i := range firsts {
				if i < maxSoFar {
					moved++
					if maxSoFar-i >= w {
						t.Fatalf("index %d comes after %d: beyond the window %d", i, maxSoFar, w)
					}
				}
				maxSoFar = max(maxSoFar, i)
			}
			dups := len(order) - tc.n
			if tc.n > 0 && tc.sh.DupPercent > 0 {
				got := 100 * float64(dups) / float64(tc.n)
				if got < float64(tc.sh.DupPercent)-2 || got > float64(tc.sh.DupPercent)+2 {
					t.Errorf("%.1f%% duplicated, want about %d%%", got, tc.sh.DupPercent)
				}
			}
			if w == 1 && (moved != 0 || dups != 0) {
				t.Errorf("window 1: %d moved, %d duplicated", moved, dups)
			}
			if w > 1 && tc.n > 100 && moved == 0 {
				t.Error("nothing moved")
			}
		})
	}
}

func TestSetShuffled(t *testing.T) {
	s := Generate(Config{Seed: 5, Changes: 800, Keys: 100, DB: "other"})
	for _, enc := range []string{EncCanalJSON, EncMaxwellPosition, EncDebezium} {
		msgs, seqs, err := s.Shuffled(enc, Shuffle{Seed: 6, Window: 16, DupPercent: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != len(seqs) {
			t.Fatalf("%s: %d messages, %d seqs", enc, len(msgs), len(seqs))
		}
		for i, seq := range seqs {
			if seq < 0 {
				if i >= len(s.Preamble(enc)) {
					t.Fatalf("%s: message %d has no change and is not in the preamble", enc, i)
				}
				continue
			}
			want, _ := Encode(enc, &s.Changes[seq])
			if !slices.ContainsFunc(want, func(m Message) bool {
				return bytes.Equal(m.Value, msgs[i].Value) && bytes.Equal(m.Key, msgs[i].Key)
			}) {
				t.Fatalf("%s: message %d is not an encoding of change %d", enc, i, seq)
			}
		}
	}
}

// TestConfigDB checks a set in its own database names it everywhere.
func TestConfigDB(t *testing.T) {
	a := Generate(Config{Seed: 9, Changes: 600, Keys: 80})
	b := Generate(Config{Seed: 9, Changes: 600, Keys: 80, DB: "rs_other"})
	if a.Tables[0] != Users || a.Tables[1] != Items {
		t.Error("the default set does not use Users and Items")
	}
	for i, tb := range b.Tables {
		if tb.DB != "rs_other" || tb.Name != Tables[i].Name {
			t.Errorf("table %d is %s.%s", i, tb.DB, tb.Name)
		}
	}
	if len(a.Changes) != len(b.Changes) {
		t.Fatal("change counts differ")
	}
	for i := range a.Changes {
		ca, cb := &a.Changes[i], &b.Changes[i]
		if ca.Op != cb.Op || !ca.After.Equal(cb.After) || !ca.Before.Equal(cb.Before) {
			t.Fatalf("change %d differs beyond the database name", i)
		}
	}
	want := map[string]map[string]string{}
	for k, v := range a.Expected("p:") {
		want[strings.Replace(k, "p:shop_", "p:rs_other_", 1)] = v
	}
	if !reflect.DeepEqual(b.Expected("p:"), want) {
		t.Error("expected state differs beyond the database name")
	}
	for _, enc := range Encodings {
		parts, err := b.Stream(enc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range parts[0] {
			if bytes.Contains(m.Value, []byte(`"shop"`)) || bytes.Contains(m.Value, []byte("shop.")) {
				t.Fatalf("%s: message names shop: %.300s", enc, m.Value)
			}
		}
	}
}

// TestMaxwellPosition checks the position decodes to a version that
// increases with Seq.
func TestMaxwellPosition(t *testing.T) {
	s := testSet(t, 1)
	dec := newDecoder(t, EncMaxwellPosition)
	for _, m := range Preamble(EncMaxwellPosition) {
		if _, err := dec.Decode(decode.Message{Value: m.Value, Topic: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for i := range s.Changes {
		c := &s.Changes[i]
		msgs, _ := Encode(EncMaxwellPosition, c)
		evs, err := dec.Decode(decode.Message{Key: msgs[0].Key, Value: msgs[0].Value, Topic: "t", Offset: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		want := cdc.BinlogPosVersion(BinlogFile, c.Offset())
		for _, ev := range evs {
			if ev.Pos.Version != want {
				t.Fatalf("change %d: version %d, want %d", i, ev.Pos.Version, want)
			}
		}
		if want <= last {
			t.Fatalf("change %d: version %d not above %d", i, want, last)
		}
		last = want
	}
}

// TestLoadFinal loads a set into the test MariaDB (127.0.0.1:3306) and
// reads every row back as text: MySQL must print what Hash renders.
func TestLoadFinal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	name := fmt.Sprintf("rs_changegen_%d", time.Now().UnixNano()%1e9)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP DATABASE "+name); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	s := Generate(Config{Seed: 11, Changes: 3000, Keys: 400, DB: name})
	if err := s.LoadFinal(ctx, db); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	for _, tb := range s.Tables {
		rows, err := conn.QueryContext(ctx, "SELECT * FROM "+quoteIdent(tb.DB)+"."+quoteIdent(tb.Name))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]map[string]string{}
		for rows.Next() {
			raw := make([]sql.RawBytes, len(tb.cols))
			ptrs := make([]any, len(raw))
			for i := range raw {
				ptrs[i] = &raw[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			h := map[string]string{}
			var key []string
			for i, c := range tb.cols {
				if raw[i] != nil {
					h[c.Name] = string(raw[i])
				}
				if tb.isPK(c.Name) {
					key = append(key, string(raw[i]))
				}
			}
			got[strings.Join(key, ":")] = h
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if len(got) != len(s.Final[tb]) {
			t.Errorf("%s: %d rows, want %d", tb.Name, len(got), len(s.Final[tb]))
		}
		bad := 0
		for k, row := range s.Final[tb] {
			want := Hash(tb, row)
			if tb.Name == "users" {
				// MariaDB keeps JSON text as given; MySQL would normalize
				// it, and so prints what Hash has. DOUBLE text differs
				// from FormatText ("1e10" vs "10000000000").
				for _, f := range []string{"score"} {
					delete(want, f)
					delete(got[k], f)
				}
			}
			if !reflect.DeepEqual(got[k], want) {
				if bad++; bad <= 3 {
					t.Errorf("%s %s: got %q, want %q", tb.Name, k, got[k], want)
				}
			}
		}
	}
}
