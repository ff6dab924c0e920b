package changegen

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestApplySQL runs a change sequence as statements in one schema and
// loads its final rows in another (test MariaDB, 127.0.0.1:3306): both
// must print the same rows.
func TestApplySQL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/?interpolateParams=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	base := fmt.Sprintf("rs_changegen_apply_%d", time.Now().UnixNano()%1e9)
	dump := func(s *Set) map[string][]string {
		out := map[string][]string{}
		for _, tb := range s.Tables {
			rows, err := db.QueryContext(ctx, "SELECT * FROM "+quoteIdent(tb.DB)+"."+quoteIdent(tb.Name))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				raw := make([]sql.RawBytes, len(tb.cols))
				ptrs := make([]any, len(raw))
				for i := range raw {
					ptrs[i] = &raw[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				var b strings.Builder
				for _, r := range raw {
					if r == nil {
						b.WriteString("NULL|")
					} else {
						fmt.Fprintf(&b, "%q|", r)
					}
				}
				out[tb.Name] = append(out[tb.Name], b.String())
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			slices.Sort(out[tb.Name])
		}
		return out
	}
	cfg := Config{Seed: 21, Changes: 4000, Keys: 300}
	var sets []*Set
	for _, suffix := range []string{"_run", "_final"} {
		name := base + suffix
		if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := db.ExecContext(context.Background(), "DROP DATABASE "+name); err != nil {
				t.Errorf("drop %s: %v", name, err)
			}
		})
		c := cfg
		c.DB = name
		sets = append(sets, Generate(c))
	}
	run, final := sets[0], sets[1]
	for _, tb := range run.Tables {
		if _, err := db.ExecContext(ctx, tb.CreateSQL()); err != nil {
			t.Fatal(err)
		}
	}
	// in two ranges, as a test that stops in the middle does
	half := len(run.Changes) / 2
	if err := run.ApplySQLRange(ctx, db, 0, half); err != nil {
		t.Fatal(err)
	}
	if err := run.ApplySQLRange(ctx, db, half, len(run.Changes)); err != nil {
		t.Fatal(err)
	}
	if err := final.LoadFinal(ctx, db); err != nil {
		t.Fatal(err)
	}
	got, want := dump(run), dump(final)
	for _, tb := range run.Tables {
		g, w := got[tb.Name], want[tb.Name]
		if len(w) == 0 {
			t.Fatalf("%s: no final rows", tb.Name)
		}
		if !slices.Equal(g, w) {
			t.Errorf("%s: %d rows after the changes, %d loaded; first difference:", tb.Name, len(g), len(w))
			for i := range min(len(g), len(w)) {
				if g[i] != w[i] {
					t.Errorf("  got  %s\n  want %s", g[i], w[i])
					break
				}
			}
		}
	}
	if err := run.ApplySQLRange(ctx, db, 5, 3); err == nil {
		t.Error("a reversed range was accepted")
	}
}

// TestNumbersCTE counts the numbers NumbersCTE gives on the test MariaDB
// (127.0.0.1:3306): 1..rows, each once.
func TestNumbersCTE(t *testing.T) {
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, rows := range []int{1, 7, 10, 11, 1000, 12345} {
		var n, lo, hi, distinct int
		q := NumbersCTE(rows) + fmt.Sprintf("SELECT COUNT(*), MIN(n), MAX(n), COUNT(DISTINCT n) FROM nums WHERE n <= %d", rows)
		if err := db.QueryRowContext(t.Context(), q).Scan(&n, &lo, &hi, &distinct); err != nil {
			t.Fatalf("%d: %v\n%s", rows, err, q)
		}
		if n != rows || lo != 1 || hi != rows || distinct != rows {
			t.Errorf("NumbersCTE(%d): %d numbers %d..%d (%d distinct)", rows, n, lo, hi, distinct)
		}
	}
}
