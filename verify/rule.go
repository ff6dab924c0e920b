package verify

import (
	"fmt"

	"github.com/rowsync/rowsync/keymap"
	redisproj "github.com/rowsync/rowsync/projector/redis"
)

// RedisTableFor describes db.table as the redis_hash rule c (with the
// entry's configured pk) projects it: the key template (default
// redisproj.DefaultKey), include/exclude, and the version field as a hash
// field that is not a column.
func RedisTableFor(db, table string, c redisproj.TableConfig, pk []string) (RedisTable, error) {
	text := c.Key
	if text == "" {
		text = redisproj.DefaultKey
	}
	tmpl, err := keymap.Parse(text)
	if err != nil {
		return RedisTable{}, fmt.Errorf("key: %w", err)
	}
	spec := RedisTable{DB: db, Table: table, Key: tmpl, PK: pk, Include: c.Include, Exclude: c.Exclude}
	if f := c.VersionField; f != "" {
		spec.Ignore = []string{f}
	}
	return spec, nil
}
