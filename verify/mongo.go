package verify

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/cdc"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
	"github.com/rowsync/rowsync/refetch"
)

// Mongo compares db.table's rows with their documents, as im (the mongo
// rule of the table) renders them. The fields that describe the change
// rather than the row (version_field, metadata) are left out; a tombstone
// counts as no document. rf reads MySQL.
func Mongo(ctx context.Context, rf *refetch.Refetcher, im *mongoproj.Image, db, table string, opt Options) (Stats, error) {
	s := &mongoSink{im: im, ignore: im.ChangeFields()}
	return compare(ctx, rf, db, table, nil, s, opt)
}

type mongoSink struct {
	im     *mongoproj.Image
	ignore []string
}

// idKey encodes an _id (type and bytes) as the projector compares them.
func idKey(t bson.Type, data []byte) string { return string(rune(t)) + string(data) }

func (s *mongoSink) name(c *check, row *cdc.Row, cols []cdc.Column) (string, error) {
	id, err := s.im.ID(row, cols, c.pk)
	if err != nil {
		return "", err
	}
	t, data, err := bson.MarshalValue(id)
	if err != nil {
		return "", fmt.Errorf("encode _id: %w", err)
	}
	return idKey(t, data), nil
}

func (s *mongoSink) compare(ctx context.Context, c *check, rows []*cdc.Row) error {
	type want struct {
		doc bson.Raw
		row *cdc.Row
	}
	wants := make(map[string]want, len(rows))
	order := make([]string, 0, len(rows))
	ids := make(bson.A, 0, len(rows))
	for _, row := range rows {
		doc, err := s.im.Document(row, c.cols, c.pk)
		if err != nil {
			c.mismatch(Mismatch{Kind: Unrenderable, Detail: err.Error(), PK: c.pkText(row)})
			continue
		}
		id := doc.Lookup("_id")
		k := idKey(id.Type, id.Value)
		wants[k] = want{doc, row}
		order = append(order, k)
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	coll := s.im.Collection()
	cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetBatchSize(int32(len(ids))))
	if err != nil {
		return fmt.Errorf("find in %s: %w", coll.Name(), err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	got := make(map[string]bson.Raw, len(ids))
	for cur.Next(ctx) {
		id := cur.Current.Lookup("_id")
		got[idKey(id.Type, id.Value)] = append(bson.Raw(nil), cur.Current...)
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("find in %s: %w", coll.Name(), err)
	}
	for _, k := range order {
		w := wants[k]
		show := w.doc.Lookup("_id").String()
		g, ok := got[k]
		switch {
		case !ok:
			c.mismatch(Mismatch{Kind: Missing, Key: show, PK: c.pkText(w.row)})
		case mongoproj.Tombstone(g):
			c.mismatch(Mismatch{Kind: Missing, Key: show, Detail: "tombstone", PK: c.pkText(w.row)})
		default:
			if d, err := docDiff(w.doc, g, s.ignore); err != nil {
				return fmt.Errorf("document %s: %w", show, err)
			} else if d != "" {
				c.mismatch(Mismatch{Kind: Different, Key: show, Detail: d, PK: c.pkText(w.row)})
			}
		}
	}
	return nil
}

// docDiff describes how got differs from want, field by field (type and
// bytes of each value; the order of the fields aside); "" if equal.
func docDiff(want, got bson.Raw, ignore []string) (string, error) {
	fields := func(doc bson.Raw) (map[string]bson.RawValue, error) {
		els, err := doc.Elements()
		if err != nil {
			return nil, err
		}
		m := make(map[string]bson.RawValue, len(els))
		for _, e := range els {
			if !slices.Contains(ignore, e.Key()) {
				m[e.Key()] = e.Value()
			}
		}
		return m, nil
	}
	w, err := fields(want)
	if err != nil {
		return "", err
	}
	g, err := fields(got)
	if err != nil {
		return "", err
	}
	var d []string
	for k, wv := range w {
		gv, ok := g[k]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("%s: missing (want %s)", k, wv))
		case gv.Type != wv.Type || !bytes.Equal(gv.Value, wv.Value):
			d = append(d, fmt.Sprintf("%s: %s (want %s)", k, gv, wv))
		}
	}
	for k, gv := range g {
		if _, ok := w[k]; !ok {
			d = append(d, fmt.Sprintf("%s: %s (want absent)", k, gv))
		}
	}
	slices.Sort(d)
	return strings.Join(d, "; "), nil
}

// walk reads the collection's _ids (and, with an id template, the key
// fields), c.chunk documents per round trip. Tombstones are not rows.
func (s *mongoSink) walk(ctx context.Context, c *check, fn func([]entry) error) error {
	coll := s.im.Collection()
	cur, err := coll.Find(ctx, bson.D{}, options.Find().
		SetProjection(s.im.KeyProjection(c.pk)).SetBatchSize(int32(c.chunk)))
	if err != nil {
		return fmt.Errorf("read _ids of %s: %w", coll.Name(), err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	batch := make([]entry, 0, c.chunk)
	for cur.Next(ctx) {
		doc := cur.Current
		if mongoproj.Tombstone(doc) {
			continue
		}
		id, err := doc.LookupErr("_id")
		if err != nil {
			continue
		}
		e := entry{key: idKey(id.Type, id.Value), show: id.String()}
		e.pk, e.why = s.im.KeyOf(doc, c.pk)
		batch = append(batch, e)
		if len(batch) == c.chunk {
			if err := fn(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read _ids of %s: %w", coll.Name(), err)
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}
