package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/keymap"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/verify"
)

// checkSchemas checks every existing table the config maps against its
// MySQL schema, so mistakes the file alone cannot show are caught before
// streaming: a key template or column list naming a column the table
// lacks, or a {pk} key on a table without a primary key and no `pk:`.
// Tables created later are checked per change (a dead letter, not a halt).
func checkSchemas(ctx context.Context, cfg *config.Config, db *sql.DB) error {
	find := cfg.TableFor()
	include := sourceFilter(cfg)
	tables, err := verify.Tables(ctx, db, func(d, t string) bool { return include(d, t) && find(d, t) >= 0 })
	if err != nil {
		return err
	}
	var errs []error
	for _, dt := range tables {
		i := find(dt[0], dt[1])
		t := cfg.Tables[i]
		cols, pk, err := verify.Schema(ctx, db, dt[0], dt[1])
		if err != nil {
			return err
		}
		names := make([]string, len(cols))
		for j, c := range cols {
			names[j] = c.Name
		}
		where := fmt.Sprintf("tables[%d] (%s.%s)", i, dt[0], dt[1])
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{where}, args...)...))
		}
		for _, c := range t.PK {
			if !slices.Contains(names, c) {
				fail("pk: unknown column %q", c)
			}
		}
		hasPK := len(pk) > 0 || len(t.PK) > 0
		if h := t.RedisHash; h != nil {
			key := h.Key
			if key == "" {
				key = redisproj.DefaultKey
			}
			if tmpl, err := keymap.Parse(key); err == nil {
				if err := tmpl.CheckColumns(names); err != nil {
					fail("redis_hash.key: %v", err)
				}
				if tmpl.UsesPK() && !hasPK {
					fail("redis_hash.key %q needs {pk} but the table has no primary key: set pk: [columns] or a key template without {pk}", key)
				}
			}
			for _, c := range append(slices.Clone(h.Include), h.Exclude...) {
				if !slices.Contains(names, c) {
					fail("redis_hash include/exclude: unknown column %q", c)
				}
			}
			if h.VersionField != "" && slices.Contains(names, h.VersionField) {
				fail("redis_hash.version_field %q is also a column", h.VersionField)
			}
		}
		if inv := t.Invalidate; inv != nil {
			for j, k := range inv.Keys {
				if tmpl, err := keymap.Parse(k.Key); err == nil {
					if err := tmpl.CheckColumns(names); err != nil {
						fail("invalidate.keys[%d]: %v", j, err)
					}
					if tmpl.UsesPK() && !hasPK {
						fail("invalidate.keys[%d] needs {pk} but the table has no primary key", j)
					}
				}
				for _, c := range k.WhenChanged {
					if !slices.Contains(names, c) {
						fail("invalidate.keys[%d].when_changed: unknown column %q", j, c)
					}
				}
			}
		}
		if t.Mongo != nil && !hasPK {
			fail("mongo: the table has no primary key: set pk: [columns]")
		}
	}
	return errors.Join(errs...)
}

// sourceFilter is the binlog source's include/exclude (everything for
// other sources).
func sourceFilter(cfg *config.Config) func(db, table string) bool {
	b := cfg.Source.Binlog
	if b == nil {
		return func(string, string) bool { return true }
	}
	compile := func(pats []string) []*cdc.TableRule[struct{}] {
		var out []*cdc.TableRule[struct{}]
		for _, p := range pats {
			if re, err := cdc.CompileMatch(p); err == nil {
				out = append(out, &cdc.TableRule[struct{}]{Match: re})
			}
		}
		return out
	}
	inc, exc := compile(b.Include), compile(b.Exclude)
	return func(db, table string) bool {
		name := db + "." + table
		ok := len(inc) == 0
		for _, r := range inc {
			if r.Match.MatchString(name) {
				ok = true
				break
			}
		}
		for _, r := range exc {
			if r.Match.MatchString(name) {
				return false
			}
		}
		return ok
	}
}
