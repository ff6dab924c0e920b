package redis

import (
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/keymap"
)

// Image tells how Apply renders the rows of one table: the key of a row's
// hash and the fields it holds. `rowsync verify` compares Redis with MySQL
// through it, so the comparison is exactly what the projector writes. It
// is immutable and safe for concurrent use.
type Image struct {
	db, table string
	r         *rule
}

// Image returns the rendering of db.table's rows; false when no rule
// matches the table.
func (p *Projector) Image(db, table string) (*Image, bool) {
	tr := p.tables.Lookup(db, table)
	if tr == nil {
		return nil, false
	}
	return &Image{db: db, table: table, r: tr.Config}, true
}

// event is what Apply would see for row: the table's names, its primary
// key (the rule's pk when the table has none) and its columns.
func (im *Image) event(cols []cdc.Column, pk []string) (cdc.Event, []string) {
	if len(pk) == 0 {
		pk = im.r.pk
	}
	return cdc.Event{DB: im.db, Table: im.table, PK: pk, Columns: cols}, pk
}

// Key returns the key of row's hash. pk is the table's primary key (nil
// for none: the rule's pk is used, as Apply does); cols, the table's
// columns, type the values the template reads.
func (im *Image) Key(row *cdc.Row, cols []cdc.Column, pk []string) (string, error) {
	e, pk := im.event(cols, pk)
	return im.r.render(&e, row, pk)
}

// Fields returns the hash Apply writes for row: its non-NULL columns
// after include/exclude, each in MySQL text form (cdc.FormatText). The
// version field is not among them: it belongs to the change, not the row.
func (im *Image) Fields(row *cdc.Row, cols []cdc.Column) map[string]string {
	e, _ := im.event(cols, nil)
	// Buffers sized to the row: Apply's plan allocates blocks for a whole
	// batch (1024 strings, 8 KiB of text), which the map's strings would
	// keep alive row by row.
	pl := &plan{strs: make([]string, 0, 2*row.Len()), text: make([]byte, 0, 64+48*row.Len())}
	args := pl.fields(make([]any, 0, 2*row.Len()), im.r, &e, row)
	out := make(map[string]string, len(args)/2)
	for i := 0; i+1 < len(args); i += 2 {
		// names and values are strings or *strings (plan.fields)
		name, _ := argText(args[i])
		value, _ := argText(args[i+1])
		out[name] = value
	}
	return out
}

// Client returns the client the projector writes through.
func (p *Projector) Client() goredis.UniversalClient { return p.client }

// Template returns the key template.
func (im *Image) Template() *keymap.Template { return im.r.tmpl }

// PK returns the rule's configured primary key (nil when none is set).
func (im *Image) PK() []string { return im.r.pk }

// VersionField returns the hash field holding the version of the change
// that wrote the row; "" without a version guard.
func (im *Image) VersionField() string { return im.r.versionField }

// SideKey reports whether key is one of the projector's own keys beside a
// row's hash (a staging key, a tombstone), not a row.
func (im *Image) SideKey(key string) bool {
	return strings.HasSuffix(key, stageSuffix) || im.r.tombSuffix != "" && strings.HasSuffix(key, im.r.tombSuffix)
}
