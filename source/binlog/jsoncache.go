package binlog

import (
	"fmt"
	"strings"

	"github.com/rowsync/rowsync/cdc"
)

// jsonCacheRows bounds the rows whose JSON values the source remembers.
const jsonCacheRows = 1 << 16

// jsonCache remembers the newest JSON column values of recently changed
// rows, by table and primary key. A partial JSON update whose event lacks
// the previous value (binlog_row_image MINIMAL) is applied to the value
// remembered here: the binlog holds every change of a row in order and the
// source reads them all, so the newest value it read is the previous one.
// It is emptied whenever that chain might break: on reconnect (events are
// read again), on DDL, and when full.
type jsonCache struct {
	rows map[string]*cdc.Row
}

func (c *jsonCache) reset() { c.rows = nil }

// rowKey names a row by its table and primary key; "" when the key is
// not known.
func rowKey(table string, pk []string, r *cdc.Row) string {
	if len(pk) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(table)
	for _, k := range pk {
		v, ok := r.Lookup(k)
		if !ok {
			return ""
		}
		fmt.Fprintf(&b, "\x00%T:%v", v, v)
	}
	return b.String()
}

func (c *jsonCache) get(key string) *cdc.Row {
	if key == "" {
		return nil
	}
	return c.rows[key]
}

// put remembers the JSON columns of r (those p decodes from binary JSON).
// A column r lacks is forgotten: its value is no longer known.
func (c *jsonCache) put(key string, p *plan, r *cdc.Row) {
	if key == "" {
		return
	}
	if c.rows == nil || len(c.rows) >= jsonCacheRows {
		c.rows = make(map[string]*cdc.Row)
	}
	m := new(cdc.Row)
	for i, name := range p.names {
		if !p.jsonBin[i] {
			continue
		}
		if v, ok := r.Lookup(name); ok {
			m.Set(name, v)
		}
	}
	c.rows[key] = m
}

func (c *jsonCache) del(key string) {
	if key != "" {
		delete(c.rows, key)
	}
}
