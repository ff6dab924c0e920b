package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/keymap"
	redisproj "github.com/rowsync/rowsync/projector/redis"
	"github.com/rowsync/rowsync/refetch"
)

// Redis compares db.table's rows with their hashes, as im (the redis_hash
// rule of the table) renders them. A hash field that is the rule's
// version field is left out. rf reads MySQL (its session runs in UTC, so
// TIMESTAMP values read as the sources produce them).
func Redis(ctx context.Context, rf *refetch.Refetcher, rdb goredis.UniversalClient, im *redisproj.Image, db, table string, opt Options) (Stats, error) {
	s := &redisSink{rdb: rdb, im: im, pattern: Pattern(im.Template(), db, table)}
	return compare(ctx, rf, db, table, im.PK(), s, opt)
}

type redisSink struct {
	rdb     goredis.UniversalClient
	im      *redisproj.Image
	pattern string
}

func (s *redisSink) name(c *check, row *cdc.Row, cols []cdc.Column) (string, error) {
	return s.im.Key(row, cols, c.pk)
}

func (s *redisSink) compare(ctx context.Context, c *check, rows []*cdc.Row) error {
	type want struct {
		key    string
		fields map[string]string
		row    *cdc.Row
	}
	wants := make([]want, 0, len(rows))
	for _, row := range rows {
		key, err := s.name(c, row, c.cols)
		if err != nil {
			c.mismatch(Mismatch{Kind: Unrenderable, Detail: err.Error(), PK: c.pkText(row)})
			continue
		}
		wants = append(wants, want{key, s.im.Fields(row, c.cols), row})
	}
	if len(wants) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.MapStringStringCmd, len(wants))
	for i, w := range wants {
		cmds[i] = pipe.HGetAll(ctx, w.key)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isWrongType(err) {
		return fmt.Errorf("hgetall: %w", err)
	}
	vf := s.im.VersionField()
	for i, w := range wants {
		got, err := cmds[i].Result()
		switch {
		case isWrongType(err):
			c.mismatch(Mismatch{Kind: Different, Key: w.key, Detail: "not a hash", PK: c.pkText(w.row)})
			continue
		case err != nil:
			return fmt.Errorf("hgetall %s: %w", w.key, err)
		}
		if vf != "" {
			delete(got, vf)
		}
		if len(got) == 0 {
			c.mismatch(Mismatch{Kind: Missing, Key: w.key, PK: c.pkText(w.row)})
		} else if d := diff(w.fields, got); d != "" {
			c.mismatch(Mismatch{Kind: Different, Key: w.key, Detail: d, PK: c.pkText(w.row)})
		}
	}
	return nil
}

func isWrongType(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")
}

// walk SCANs the rule's key pattern (on every master of a cluster) and
// reads the primary-key fields of each hash found. Keys of other types and
// the projector's side keys (staging, tombstones) are not rows.
func (s *redisSink) walk(ctx context.Context, c *check, fn func([]entry) error) error {
	var nodes []*goredis.Client
	switch r := s.rdb.(type) {
	case *goredis.ClusterClient:
		var mu sync.Mutex
		if err := r.ForEachMaster(ctx, func(_ context.Context, n *goredis.Client) error {
			mu.Lock()
			nodes = append(nodes, n)
			mu.Unlock()
			return nil
		}); err != nil {
			return fmt.Errorf("list cluster masters: %w", err)
		}
	case *goredis.Client:
		nodes = []*goredis.Client{r}
	default:
		return fmt.Errorf("redis client %T: cannot scan its keys", s.rdb)
	}
	keys := make([]string, 0, c.chunk)
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		batch, err := s.entries(ctx, c, keys)
		keys = keys[:0]
		if err != nil {
			return err
		}
		return fn(batch)
	}
	for _, n := range nodes {
		iter := n.Scan(ctx, 0, s.pattern, int64(c.chunk)).Iterator()
		for iter.Next(ctx) {
			if k := iter.Val(); !s.im.SideKey(k) {
				keys = append(keys, k)
			}
			if len(keys) == c.chunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("scan %s: %w", s.pattern, err)
		}
	}
	return flush()
}

// entries reads the type and the primary-key fields of keys in one round
// trip.
func (s *redisSink) entries(ctx context.Context, c *check, keys []string) ([]entry, error) {
	pipe := s.rdb.Pipeline()
	types := make([]*goredis.StatusCmd, len(keys))
	vals := make([]*goredis.SliceCmd, len(keys))
	for i, k := range keys {
		types[i] = pipe.Type(ctx, k)
		if len(c.pk) > 0 {
			vals[i] = pipe.HMGet(ctx, k, c.pk...)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !isWrongType(err) {
		return nil, fmt.Errorf("read keys of %s: %w", s.pattern, err)
	}
	out := make([]entry, 0, len(keys))
	for i, k := range keys {
		if types[i].Val() != "hash" {
			continue // gone since the scan, or not one of ours
		}
		e := entry{key: k, show: k}
		if vals[i] != nil {
			e.pk, e.why = hashKey(vals[i].Val(), c.pk)
		}
		out = append(out, e)
	}
	return out, nil
}

// hashKey returns the primary key a hash holds in its fields.
func hashKey(vals []any, pk []string) (*cdc.Row, error) {
	row := new(cdc.Row)
	for j, v := range vals {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("the hash has no field %s (excluded, or not written)", pk[j])
		}
		row.Set(pk[j], s)
	}
	return row, nil
}

// Pattern turns a key template into a SCAN glob for one table: {db} and
// {table} become their names, every other placeholder "*". A glob may
// also match keys of another table (shop_users_* matches the keys of
// shop.users_archive too): give such tables templates that differ.
func Pattern(t *keymap.Template, db, table string) string {
	s := t.String()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			b.WriteString(`\{`)
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			b.WriteString(`\}`)
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			name := strings.TrimSpace(strings.Split(s[i+1:i+end], "|")[0])
			switch name {
			case "db":
				b.WriteString(globEscape(db))
			case "table":
				b.WriteString(globEscape(table))
			default:
				b.WriteByte('*')
			}
			i += end
		default:
			b.WriteString(globEscape(string(c)))
		}
	}
	return b.String()
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`, `\`, `\\`)
	return r.Replace(s)
}

// diff describes how got differs from want, field by field; "" if equal.
func diff(want, got map[string]string) string {
	var d []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			d = append(d, fmt.Sprintf("%s: missing (want %q)", k, w))
		} else if g != w {
			d = append(d, fmt.Sprintf("%s: %q (want %q)", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: %q (want absent)", k, g))
		}
	}
	slices.Sort(d)
	return strings.Join(d, "; ")
}
