package mongo

import (
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rowsync/rowsync/cdc"
)

// Image tells how Apply renders the rows of one table: the collection,
// each row's _id and its document. `rowsync verify` compares MongoDB with
// MySQL through it, so the comparison is exactly what the projector
// writes. It is immutable and safe for concurrent use.
type Image struct {
	db, table string
	r         *rule
	t         *target
}

// Image returns the rendering of db.table's rows; false when no rule
// matches the table.
func (p *Projector) Image(db, table string) (*Image, bool) {
	tr := p.tables.Lookup(db, table)
	if tr == nil {
		return nil, false
	}
	r := tr.Config
	database, coll := db, table
	if r.database != "" {
		database = r.database
	}
	if r.collection != "" {
		coll = r.collection
	}
	return &Image{db: db, table: table, r: r, t: p.target(database, coll, r)}, true
}

// Collection returns the collection the table's documents are in.
func (im *Image) Collection() *mongo.Collection { return im.t.coll }

// event is what Apply would see for row: the table's names, its primary
// key (the rule's pk when the table has none) and its columns.
func (im *Image) event(row *cdc.Row, cols []cdc.Column, pk []string) (cdc.Event, []string) {
	if len(pk) == 0 {
		pk = im.r.pk
	}
	return cdc.Event{DB: im.db, Table: im.table, Op: cdc.Insert, PK: pk, After: row, Columns: cols}, pk
}

// ID returns row's _id. pk is the table's primary key (nil for none: the
// rule's pk is used, as Apply does); cols are the table's columns.
func (im *Image) ID(row *cdc.Row, cols []cdc.Column, pk []string) (any, error) {
	e, pk := im.event(row, cols, pk)
	return im.r.id(&e, row, pk)
}

// Document returns the document Apply writes for row, _id first. Without
// a change to describe, it holds no version field and an empty metadata
// field (see ChangeFields).
func (im *Image) Document(row *cdc.Row, cols []cdc.Column, pk []string) (bson.Raw, error) {
	e, pk := im.event(row, cols, pk)
	id, err := im.r.id(&e, row, pk)
	if err != nil {
		return nil, err
	}
	return im.r.document(&e, row, id, 0)
}

// ChangeFields returns the fields whose value describes the change that
// wrote a document rather than its row (version_field, metadata); a
// comparison with MySQL leaves them out.
func (im *Image) ChangeFields() []string {
	var out []string
	if im.r.versionField != "" {
		out = append(out, im.r.versionField)
	}
	if im.r.metadata != "" {
		out = append(out, im.r.metadata)
	}
	return out
}

// Tombstone reports whether doc is a guarded delete's tombstone: it
// stands for a deleted row.
func Tombstone(doc bson.Raw) bool {
	v, err := doc.LookupErr(DeletedField)
	return err == nil && v.Type == bson.TypeBoolean && v.Boolean()
}

// KeyProjection returns the projection that reads what KeyOf needs of a
// stored document: _id, the tombstone mark and, with an id template, the
// primary-key fields.
func (im *Image) KeyProjection(pk []string) bson.D {
	if len(pk) == 0 {
		pk = im.r.pk
	}
	p := bson.D{{Key: "_id", Value: 1}, {Key: DeletedField, Value: 1}}
	if im.r.tmpl != nil {
		for _, c := range pk {
			p = append(p, bson.E{Key: im.r.field(c), Value: 1})
		}
	}
	return p
}

// KeyOf returns the primary-key values of a stored document (read with
// KeyProjection), typed as cdc values: from its _id when the _id is the
// primary key (the default), else from the document's key fields. pk is
// the table's primary key (nil: the rule's). An error means the document
// names no row of the table (a field missing, a value of a type no key
// column has).
func (im *Image) KeyOf(doc bson.Raw, pk []string) (*cdc.Row, error) {
	if len(pk) == 0 {
		pk = im.r.pk
	}
	if len(pk) == 0 {
		return nil, errors.New("no primary key")
	}
	var src bson.Raw = doc
	if im.r.tmpl == nil {
		id, err := doc.LookupErr("_id")
		if err != nil {
			return nil, errors.New("no _id")
		}
		if len(pk) == 1 {
			v, err := keyValueOf(id)
			if err != nil {
				return nil, fmt.Errorf("_id: %w", err)
			}
			return cdc.RowOf(pk[0], v), nil
		}
		sub, ok := id.DocumentOK()
		if !ok {
			return nil, fmt.Errorf("_id is a %s, not a document of the %d key fields", id.Type, len(pk))
		}
		src = sub
	}
	row := new(cdc.Row)
	for _, c := range pk {
		f := im.r.field(c)
		rv, err := src.LookupErr(f)
		if err != nil {
			return nil, fmt.Errorf("key field %s missing", f)
		}
		v, err := keyValueOf(rv)
		if err != nil {
			return nil, fmt.Errorf("key field %s: %w", f, err)
		}
		row.Set(c, v)
	}
	return row, nil
}

// keyValueOf maps a stored key value back to the cdc value it was
// converted from (see convert), as far as a key lookup needs: numbers,
// text (decimals stored as text or Decimal128 included), bytes and dates.
func keyValueOf(v bson.RawValue) (cdc.Value, error) {
	switch v.Type {
	case bson.TypeInt32:
		return int64(v.Int32()), nil
	case bson.TypeInt64:
		return v.Int64(), nil
	case bson.TypeDouble:
		return v.Double(), nil
	case bson.TypeString:
		return v.StringValue(), nil
	case bson.TypeDecimal128:
		return cdc.Decimal(v.Decimal128().String()), nil
	case bson.TypeBinary:
		_, b := v.Binary()
		return b, nil
	case bson.TypeDateTime:
		return v.Time().UTC(), nil
	}
	return nil, fmt.Errorf("a %s is no primary-key value", v.Type)
}
