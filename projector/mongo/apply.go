package mongo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/keymap"
)

// op is the planned final state of one document in one Apply call.
type op struct {
	t       *target
	id      any
	key     string   // target + encoded _id: one op per key per call
	del     bool     // delete (a tombstone when guarded)
	doc     bson.Raw // replacement document; nil for an unguarded delete
	version uint64   // 0: unguarded
	shard   bson.D   // shard key fields of the filter (shard_key)
	// moves are the shard key values the document had earlier in the
	// call or before it (same _id): deleted before o is written.
	moves   []bson.D
	move    bool  // o deletes the document at an old shard key value
	events  []int // every event merged into the op, for failure reports
	retried bool  // sent once more after a duplicate _id
}

// isDelete reports whether o's write is a DeleteOne (a guarded delete
// writes a tombstone, a replace).
func (o *op) isDelete() bool { return o.move || o.del && o.version == 0 }

// addMove records that the document must first leave shard key value sh.
func (o *op) addMove(sh bson.D) {
	for _, m := range o.moves {
		if sameShard(m, sh) {
			return
		}
	}
	o.moves = append(o.moves, sh)
}

// plan collects the ops of one Apply call.
type plan struct {
	ops    []*op
	index  map[string]*op
	failed cdc.BatchError
	now    time.Time
	merge  *cdc.Row // scratch for before-images
}

func (pl *plan) permanent(i int, err error) {
	pl.failed.Fail(i, fmt.Errorf("%w: %w", cdc.ErrPermanent, err))
}

// fail marks every event merged into o as failed.
func (pl *plan) fail(o *op, err error) {
	for _, i := range o.events {
		pl.permanent(i, err)
	}
}

// put records that event i leaves o.key in o's state. The last event of a
// key wins, except that a guarded change older than the one already
// planned loses, as it would if the two were applied one by one.
func (pl *plan) put(i int, o *op) {
	if prev, ok := pl.index[o.key]; ok {
		prev.events = append(prev.events, i)
		for _, sh := range o.moves {
			prev.addMove(sh)
		}
		if o.version != 0 && prev.version != 0 && o.version < prev.version {
			return
		}
		if !sameShard(prev.shard, o.shard) {
			// The document moved within the call: the earlier
			// location goes too (a no-op when never written).
			prev.addMove(prev.shard)
		}
		prev.id, prev.del, prev.doc, prev.version, prev.shard = o.id, o.del, o.doc, o.version, o.shard
		return
	}
	o.events = []int{i}
	pl.index[o.key] = o
	pl.ops = append(pl.ops, o)
}

// Apply writes the final state of every document the events touch: one
// unordered BulkWrite per collection (split at bulk_size). Events of a key
// must come in source order. Row-specific failures (no key, a document over
// 16 MiB, a unique index or validator violation) come back as a
// *cdc.BatchError naming the events, all others being applied; any other
// error is transient, and replaying the slice is harmless.
func (p *Projector) Apply(ctx context.Context, events []cdc.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	pl := &plan{index: make(map[string]*op, len(events)), now: time.Now()}
	for i := range events {
		e := &events[i]
		tr := p.tables.Lookup(e.DB, e.Table)
		if tr == nil {
			continue // not ours (Wants said so)
		}
		if err := p.plan(pl, i, e, tr); err != nil {
			pl.permanent(i, err)
		}
	}
	// Group by collection, in order of first appearance.
	var targets []*target
	byTarget := map[*target][]*op{}
	for _, o := range pl.ops {
		if _, ok := byTarget[o.t]; !ok {
			targets = append(targets, o.t)
		}
		byTarget[o.t] = append(byTarget[o.t], o)
	}
	for _, t := range targets {
		if err := p.ensure(ctx, t); err != nil {
			return err
		}
		ops := byTarget[t]
		for start := 0; start < len(ops); start += p.bulkSize {
			if err := p.write(ctx, t, ops[start:min(start+p.bulkSize, len(ops))], pl); err != nil {
				return err
			}
		}
	}
	return pl.failed.Err()
}

// plan adds the ops of event i.
func (p *Projector) plan(pl *plan, i int, e *cdc.Event, tr *cdc.TableRule[*rule]) error {
	r := tr.Config
	pk := e.PK
	if len(pk) == 0 {
		pk = tr.PK
	}
	db, coll := e.DB, e.Table
	if r.database != "" {
		db = r.database
	}
	if r.collection != "" {
		coll = r.collection
	}
	t := p.target(db, coll, r)
	var version uint64
	if r.versionField != "" {
		version = e.Pos.Version
	}
	switch e.Op {
	case cdc.Insert, cdc.Update:
		if e.After == nil {
			return fmt.Errorf("%s without an after image", e.Op)
		}
		id, err := r.id(e, e.After, pk)
		if err != nil {
			return err
		}
		doc, err := r.document(e, e.After, id, version)
		if err != nil {
			return err
		}
		key, err := t.key(id)
		if err != nil {
			return err
		}
		shard, err := r.shardValues(e, e.After)
		if err != nil {
			return err
		}
		o := &op{t: t, id: id, key: key, doc: doc, version: version, shard: shard}
		if e.Op == cdc.Update && e.Before != nil {
			// A changed key (pk or id template column) moves the row:
			// the old document goes; a changed shard key (same _id)
			// moves the document. A before-image without the key
			// columns named no document.
			before := pl.beforeImage(e, r, pk)
			oldShard, shardErr := r.shardValues(e, before)
			if oldID, err := r.id(e, before, pk); err == nil && shardErr == nil {
				if oldKey, err := t.key(oldID); err == nil && oldKey != key {
					if err := pl.putDelete(i, t, r, oldID, oldKey, version, oldShard); err != nil {
						return err
					}
				} else if err == nil && !sameShard(oldShard, shard) {
					o.addMove(oldShard)
				}
			}
		}
		pl.put(i, o)
	case cdc.Delete:
		if e.Before == nil {
			return errors.New("delete without a before image")
		}
		id, err := r.id(e, e.Before, pk)
		if err != nil {
			return err
		}
		key, err := t.key(id)
		if err != nil {
			return err
		}
		shard, err := r.shardValues(e, e.Before)
		if err != nil {
			return err
		}
		return pl.putDelete(i, t, r, id, key, version, shard)
	default:
		return fmt.Errorf("unknown op %s", e.Op)
	}
	return nil
}

// putDelete plans a delete: a plain DeleteOne, or a tombstone when guarded.
func (pl *plan) putDelete(i int, t *target, r *rule, id any, key string, version uint64, shard bson.D) error {
	o := &op{t: t, id: id, key: key, del: true, version: version, shard: shard}
	if version != 0 {
		tomb := make(bson.D, 0, 4+len(shard))
		tomb = append(tomb, bson.E{Key: "_id", Value: id})
		tomb = append(tomb, shard...) // a sharded collection's documents hold their shard key
		tomb = append(tomb,
			bson.E{Key: r.versionField, Value: r.versionValue(version)},
			bson.E{Key: DeletedField, Value: true},
			bson.E{Key: DeletedAtField, Value: bson.NewDateTimeFromTime(pl.now)})
		doc, err := bson.Marshal(tomb)
		if err != nil {
			return fmt.Errorf("encode tombstone: %w", err)
		}
		o.doc = doc
	}
	pl.put(i, o)
	return nil
}

// beforeImage returns the row to name the old document from. Some formats
// (Maxwell's "old") carry only the changed columns in the before-image; a
// key column missing there did not change, so it is taken from After.
func (pl *plan) beforeImage(e *cdc.Event, r *rule, pk []string) *cdc.Row {
	cols := pk
	if r.tmpl != nil {
		cols = r.tmpl.Columns()
		if r.tmpl.UsesPK() {
			cols = append(slices.Clip(cols), pk...)
		}
	}
	if len(r.shardKey) > 0 {
		cols = append(slices.Clip(cols), r.shardKey...)
	}
	complete := true
	for _, c := range cols {
		if _, ok := e.Before.Lookup(c); !ok {
			complete = false
			break
		}
	}
	if complete {
		return e.Before
	}
	if pl.merge == nil {
		pl.merge = cdc.RowOf()
	}
	pl.merge.Reset()
	for _, c := range cols {
		if v, ok := e.Before.Lookup(c); ok {
			pl.merge.Set(c, v)
		} else if v, ok := e.After.Lookup(c); ok {
			pl.merge.Set(c, v)
		}
	}
	return pl.merge
}

// key encodes the target and _id for coalescing.
func (t *target) key(id any) (string, error) {
	typ, data, err := bson.MarshalValue(id)
	if err != nil {
		return "", fmt.Errorf("encode _id: %w", err)
	}
	return t.db + "\x00" + t.name + "\x00" + string(rune(typ)) + string(data), nil
}

// rawKey is key for an _id read back from the server.
func (t *target) rawKey(v bson.RawValue) string {
	return t.db + "\x00" + t.name + "\x00" + string(rune(v.Type)) + string(v.Value)
}

// id computes the _id of row.
func (r *rule) id(e *cdc.Event, row *cdc.Row, pk []string) (any, error) {
	if r.tmpl != nil {
		if r.tmpl.UsesPK() && len(pk) == 0 {
			return nil, fmt.Errorf("id %q needs {pk} but %s.%s has no primary key in the event or the config", r.tmpl, e.DB, e.Table)
		}
		s, err := r.tmpl.Render(keymap.Input{DB: e.DB, Table: e.Table, PK: pk, Row: row, Columns: e.Columns})
		if err != nil {
			return nil, fmt.Errorf("render id %q: %w", r.tmpl, err)
		}
		if s == "" {
			return nil, fmt.Errorf("id %q renders empty", r.tmpl)
		}
		return s, nil
	}
	if len(pk) == 0 {
		return nil, fmt.Errorf("%s.%s has no primary key in the event or the config", e.DB, e.Table)
	}
	vals, err := e.Key(row, pk)
	if err != nil {
		return nil, err
	}
	if len(pk) == 1 {
		return r.keyValue(e, "primary key", pk[0], vals[0])
	}
	d := make(bson.D, len(pk))
	for i, name := range pk {
		v, err := r.keyValue(e, "primary key", name, vals[i])
		if err != nil {
			return nil, err
		}
		f := r.field(name)
		if err := checkStoredName(f); err != nil {
			return nil, fmt.Errorf("primary key column %s: %w", name, err)
		}
		d[i] = bson.E{Key: f, Value: v}
	}
	return d, nil
}

// keyValue converts one value of a write filter (what: "primary key" or
// "shard key"). Only scalars go into a filter: a document or array (a JSON
// value, a SET, text in a JSON column) would be read by the server as a
// query expression ({"$ne": null}) and match other rows, so it is refused.
func (r *rule) keyValue(e *cdc.Event, what, name string, v cdc.Value) (any, error) {
	switch v.(type) {
	case cdc.JSON, cdc.Set:
		return nil, fmt.Errorf("%s column %s: %T value is not a scalar", what, name, v)
	}
	col, _ := e.Column(name)
	out, err := r.value(&col, name, v)
	if err != nil {
		return nil, err
	}
	switch out.(type) {
	case nil, bson.D, bson.A, bson.M, bson.Raw:
		return nil, fmt.Errorf("%s column %s: value is not a scalar", what, name)
	}
	return out, nil
}

// shardValues returns the shard key fields of row for a write filter; nil
// without shard_key. A NULL value is kept (it matches null or missing).
func (r *rule) shardValues(e *cdc.Event, row *cdc.Row) (bson.D, error) {
	if len(r.shardKey) == 0 {
		return nil, nil
	}
	d := make(bson.D, 0, len(r.shardKey))
	for _, name := range r.shardKey {
		v, ok := row.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("shard key column %s missing from the row image", name)
		}
		var val any
		if v != nil {
			var err error
			if val, err = r.keyValue(e, "shard key", name, v); err != nil {
				return nil, err
			}
		}
		d = append(d, bson.E{Key: r.field(name), Value: val})
	}
	return d, nil
}

// sameShard reports whether two shard key values are equal (type and
// bytes, as the server compares them for a move).
func sameShard(a, b bson.D) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	ra, err1 := bson.Marshal(a)
	rb, err2 := bson.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ra, rb)
}

// checkStoredValue applies checkStoredName to the keys of the documents
// nested in v (JSON columns), naming the path.
func checkStoredValue(v any, path string) error {
	switch x := v.(type) {
	case bson.D:
		for _, e := range x {
			if err := checkStoredName(e.Key); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if err := checkStoredValue(e.Value, path+"."+e.Key); err != nil {
				return err
			}
		}
	case bson.A:
		for i, e := range x {
			if err := checkStoredValue(e, path+"."+strconv.Itoa(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// value converts one column value, naming the column in errors.
func (r *rule) value(col *cdc.Column, name string, v cdc.Value) (any, error) {
	if col != nil && col.Name == "" {
		col = nil // not described by the event
	}
	out, err := r.conv.convert(col, v)
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", name, err)
	}
	return out, nil
}

// document builds the replacement document of row: _id first, then the
// columns in the event's column order (the table's, whichever order the
// source sent the row's columns in; columns the event does not describe
// after them, in the row's order), then the version field and the
// metadata. Column values NULL in the row are kept as null fields.
func (r *rule) document(e *cdc.Event, row *cdc.Row, id any, version uint64) (bson.Raw, error) {
	doc := make(bson.D, 0, row.Len()+3)
	doc = append(doc, bson.E{Key: "_id", Value: id})
	add := func(col *cdc.Column, name string, v cdc.Value) error {
		if !r.keep(name) {
			return nil
		}
		f := r.field(name)
		if f == "_id" || f == r.versionField || f == r.metadata {
			return nil // the key and the projector's own fields win
		}
		if err := checkStoredName(f); err != nil {
			return fmt.Errorf("column %s: %w", name, err)
		}
		val, err := r.value(col, name, v)
		if err != nil {
			return err
		}
		if err := checkStoredValue(val, f); err != nil {
			return fmt.Errorf("column %s: %w", name, err)
		}
		doc = append(doc, bson.E{Key: f, Value: val})
		return nil
	}
	seen, prev := 0, -1
	for ci := range e.Columns {
		c := &e.Columns[ci]
		// The event's columns usually are the row's, in its order: the
		// next one is at the index after the last one's.
		at, ok := row.IndexFrom(c.Name, prev+1)
		if !ok {
			continue
		}
		prev = at
		_, v, ok := row.At(at)
		if !ok {
			continue
		}
		seen++
		if err := add(c, c.Name, v); err != nil {
			return nil, err
		}
	}
	if seen < row.Len() {
		for i := range row.Width() {
			name, v, ok := row.At(i)
			if !ok {
				continue
			}
			if _, described := e.Column(name); described {
				continue
			}
			if err := add(nil, name, v); err != nil {
				return nil, err
			}
		}
	}
	if version != 0 {
		doc = append(doc, bson.E{Key: r.versionField, Value: r.versionValue(version)})
	}
	if r.metadata != "" {
		var commit any
		if !e.Commit.IsZero() {
			commit = bson.NewDateTimeFromTime(e.Commit)
		}
		doc = append(doc, bson.E{Key: r.metadata, Value: bson.D{
			{Key: "pos", Value: e.Pos.Text},
			{Key: "commit", Value: commit},
		}})
	}
	raw, err := bson.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode document: %w", err)
	}
	if len(raw) > MaxDocumentSize {
		return nil, fmt.Errorf("document of %d bytes exceeds MongoDB's %d byte limit", len(raw), MaxDocumentSize)
	}
	return raw, nil
}

// versionValue stores a version as int64 (binlog versions fit); beyond it,
// as a decimal.
func (r *rule) versionValue(v uint64) any {
	if v <= math.MaxInt64 {
		return int64(v)
	}
	return r.conv.fromGo(v)
}

// model returns the write of o.
func (o *op) model(r *rule) mongo.WriteModel {
	filter := make(bson.D, 0, 2+len(o.shard))
	filter = append(filter, bson.E{Key: "_id", Value: o.id})
	filter = append(filter, o.shard...)
	if o.move {
		// The document at an old shard key value; guarded, only if not
		// newer than the change that moves it.
		if o.version != 0 {
			filter = append(filter, r.olderThan(o.version))
		}
		return mongo.NewDeleteOneModel().SetFilter(filter)
	}
	if o.version != 0 {
		// Apply only over an older version or a document without one.
		// When neither holds, the upsert tries to insert a second
		// document with this _id and fails with a duplicate key error:
		// the change is stale (see write).
		filter = append(filter, r.olderThan(o.version))
		return mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(o.doc).SetUpsert(true)
	}
	if o.del {
		return mongo.NewDeleteOneModel().SetFilter(filter)
	}
	return mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(o.doc).SetUpsert(true)
}

// olderThan is the filter clause "stored version older than v, or none".
func (r *rule) olderThan(v uint64) bson.E {
	vf := r.versionField
	return bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: vf, Value: bson.D{{Key: "$lt", Value: r.versionValue(v)}}}},
		bson.D{{Key: vf, Value: bson.D{{Key: "$exists", Value: false}}}},
	}}
}

var unordered = options.BulkWrite().SetOrdered(false)

// write applies ops, which have distinct keys, to t.
func (p *Projector) write(ctx context.Context, t *target, ops []*op, pl *plan) error {
	r := t.rule
	pending := ops
	if r.versionField != "" {
		// Skip what the stored versions already cover, so a replay does
		// not turn into one duplicate key error per row.
		stored, err := p.versions(ctx, t, ops)
		if err != nil {
			return err
		}
		pending = make([]*op, 0, len(ops))
		for _, o := range ops {
			if v, ok := stored[o.key]; o.version != 0 && ok && v >= o.version {
				continue // stale
			}
			pending = append(pending, o)
		}
	}
	// Documents leaving a shard key value go first, in their own bulk:
	// on an unsharded collection the _id is unique across values, so the
	// upsert at the new value must not meet the old document.
	var moves []*op
	for _, o := range pending {
		for _, sh := range o.moves {
			moves = append(moves, &op{t: o.t, id: o.id, key: o.key, version: o.version, shard: sh, move: true, events: o.events})
		}
	}
	for start := 0; start < len(moves); start += p.bulkSize {
		if err := p.send(ctx, t, moves[start:min(start+p.bulkSize, len(moves))], pl); err != nil {
			return err
		}
	}
	return p.send(ctx, t, pending, pl)
}

// send writes ops in one unordered bulk. MongoDB applies every op of an
// unordered bulk it can and reports each failed one with its index: those
// rows go to the dead letter (or, for a guarded upsert that lost to a newer
// stored version, are stale and fine) and nothing is resent. A reply whose
// counts do not cover every op (a server that stopped at the first error,
// or indexes out of range) cannot say which ops were applied; then the ops
// are split in halves and sent again, down to single ops whose failure
// names the row for certain (resending is idempotent). Write errors that
// say nothing about the row (a write conflict, a stepdown, a timeout, a
// retryable label) fail the whole call as transient.
func (p *Projector) send(ctx context.Context, t *target, ops []*op, pl *plan) error {
	if len(ops) == 0 {
		return nil
	}
	r := t.rule
	models := make([]mongo.WriteModel, len(ops))
	for i, o := range ops {
		models[i] = o.model(r)
	}
	bctx := ctx
	if p.wtimeout > 0 {
		var cancel context.CancelFunc
		bctx, cancel = context.WithTimeout(ctx, p.wtimeout)
		defer cancel()
	}
	res, err := t.coll.BulkWrite(bctx, models, unordered)
	if err == nil {
		return nil
	}
	rows, complete, err := rowErrors(ops, res, err)
	if err != nil {
		return fmt.Errorf("bulk write %s.%s: %w", t.db, t.name, err)
	}
	if !complete && len(ops) > 1 {
		half := len(ops) / 2
		if err := p.send(ctx, t, ops[:half], pl); err != nil {
			return err
		}
		return p.send(ctx, t, ops[half:], pl)
	}
	for _, i := range slices.Sorted(maps.Keys(rows)) {
		if err := p.rowFailed(ctx, t, ops[i], rows[i], pl); err != nil {
			return err
		}
	}
	return nil
}

// rowErrors maps the write errors of a bulk to the ops they name. It
// returns a transient error when any write error is not row-specific, and
// complete=false when the reply does not account for every op (then rows
// cannot be trusted to name the only failures).
func rowErrors(ops []*op, res *mongo.BulkWriteResult, err error) (rows map[int]mongo.WriteError, complete bool, _ error) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, false, err
	}
	if slices.Contains(bwe.Labels, "RetryableWriteError") {
		return nil, false, err
	}
	rows = make(map[int]mongo.WriteError, len(bwe.WriteErrors))
	complete = res != nil
	replaceErrs := 0
	for _, we := range bwe.WriteErrors {
		if transientCode(we.Code) {
			return nil, false, err
		}
		if we.Index < 0 || we.Index >= len(ops) {
			complete = false
			continue
		}
		if _, dup := rows[we.Index]; dup {
			complete = false
		}
		rows[we.Index] = we.WriteError
		if ops[we.Index].isDelete() {
			// A delete of an absent document counts nowhere, so a
			// reply cannot show that the other deletes ran.
			complete = false
		} else {
			replaceErrs++
		}
	}
	if complete {
		replaces := 0
		for _, o := range ops {
			if !o.isDelete() {
				replaces++
			}
		}
		complete = res.MatchedCount+res.UpsertedCount+int64(replaceErrs) == int64(replaces)
	}
	return rows, complete, nil
}

// rowFailed settles the write error of one op: a guarded upsert refused by
// a newer stored version is stale (nothing to do); a duplicate _id on an
// unguarded upsert is sent once more alone (another writer may have
// inserted the _id between the server's match and insert); anything else
// names a row that can never be written as it is.
func (p *Projector) rowFailed(ctx context.Context, t *target, o *op, we mongo.WriteError, pl *plan) error {
	if we.Code == codeDuplicateKey && o.version != 0 {
		stored, err := p.versions(ctx, t, []*op{o})
		if err != nil {
			return err
		}
		if v, ok := stored[o.key]; ok && v >= o.version {
			return nil
		}
	}
	if we.Code == codeDuplicateKey && o.version == 0 && !o.retried && onIDIndex(we) {
		o.retried = true
		return p.send(ctx, t, []*op{o}, pl)
	}
	pl.fail(o, fmt.Errorf("%s.%s: write error %d: %s", t.db, t.name, we.Code, we.Message))
	return nil
}

// onIDIndex reports whether a duplicate key error names the _id index.
// A server that does not say counts as a secondary index.
func onIDIndex(we mongo.WriteError) bool {
	kp, err := we.Raw.LookupErr("keyPattern")
	if err != nil {
		return false
	}
	doc, ok := kp.DocumentOK()
	if !ok {
		return false
	}
	elems, err := doc.Elements()
	return err == nil && len(elems) == 1 && elems[0].Key() == "_id"
}

// versions reads the stored versions of the guarded ops' documents, by key.
// A document without a version field is absent from the map.
func (p *Projector) versions(ctx context.Context, t *target, ops []*op) (map[string]uint64, error) {
	ids := make(bson.A, 0, len(ops))
	for _, o := range ops {
		if o.version != 0 {
			ids = append(ids, o.id)
		}
	}
	out := map[string]uint64{}
	if len(ids) == 0 {
		return out, nil
	}
	vf := t.rule.versionField
	cur, err := t.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: vf, Value: 1}}).SetBatchSize(int32(len(ids))))
	if err != nil {
		return nil, fmt.Errorf("read versions %s.%s: %w", t.db, t.name, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		id, err := cur.Current.LookupErr("_id")
		if err != nil {
			continue
		}
		if v, ok := rawVersion(cur.Current.Lookup(vf)); ok {
			out[t.rawKey(id)] = v
		}
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("read versions %s.%s: %w", t.db, t.name, err)
	}
	return out, nil
}

// rawVersion reads a stored version of any numeric type.
func rawVersion(v bson.RawValue) (uint64, bool) {
	switch v.Type {
	case bson.TypeInt64:
		n := v.Int64()
		return uint64(max(n, 0)), true
	case bson.TypeInt32:
		return uint64(max(v.Int32(), 0)), true
	case bson.TypeDouble:
		f := v.Double()
		if f < 0 || math.IsNaN(f) {
			return 0, true
		}
		if f >= math.MaxUint64 {
			return math.MaxUint64, true
		}
		return uint64(f), true
	case bson.TypeDecimal128:
		bi, exp, err := v.Decimal128().BigInt()
		if err != nil || exp != 0 || bi.Sign() < 0 || !bi.IsUint64() {
			if err == nil && bi.Sign() >= 0 && exp > 0 {
				return math.MaxUint64, true
			}
			return 0, err == nil && exp == 0
		}
		return bi.Uint64(), true
	case bson.TypeString:
		n, ok := new(big.Int).SetString(v.StringValue(), 10)
		if ok && n.IsUint64() {
			return n.Uint64(), true
		}
	}
	return 0, false
}
