package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/keymap"
	"github.com/rowsync/rowsync/mysqlmeta"
	redisproj "github.com/rowsync/rowsync/projector/redis"
)

// checkSchemas checks every existing table the config maps against its
// MySQL schema, so mistakes the file alone cannot show are caught before
// streaming: a key template or column list naming a column the table
// lacks, or a {pk} key on a table without a primary key and no `pk:`.
// Tables created later are checked per change (a dead letter, not a halt).
func checkSchemas(ctx context.Context, cfg *config.Config, db *sql.DB) error {
	router := cfg.Router()
	include, err := sourceFilter(cfg)
	if err != nil {
		return err
	}
	cat := mysqlmeta.NewCatalog(db)
	tables, err := cat.Tables(ctx, func(d, t string) bool {
		i, _ := router.Entry(d, t)
		return include.Match(d, t) && i >= 0
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, dt := range tables {
		i, t := router.Entry(dt[0], dt[1])
		def, err := cat.Table(ctx, dt[0], dt[1])
		if err != nil {
			return err
		}
		names, pk := def.Names(), def.PK
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

// sourceFilter is the binlog source's include/exclude (every table outside
// the system schemas for other sources).
func sourceFilter(cfg *config.Config) (*mysqlmeta.Filter, error) {
	b := cfg.Source.Binlog
	if b == nil {
		return nil, nil
	}
	f, err := mysqlmeta.NewFilter(b.Include, b.Exclude)
	if err != nil {
		return nil, fmt.Errorf("source.binlog: %w", err)
	}
	return f, nil
}
