// Package mongo projects row changes onto MongoDB documents: one document
// per row, keyed by the primary key, holding the row's full after-image
// with MySQL types mapped to their BSON counterparts.
//
// Each Apply call coalesces the events per document (the last change of a
// row wins) and sends one unordered BulkWrite per collection (split at
// bulk_size): a full-image ReplaceOne upsert per written row, a DeleteOne per
// deleted row. Replaying a batch rewrites the same documents, so Apply is
// idempotent. With version_field set, writes are guarded: a change whose
// binlog version is not newer than the stored one is skipped, and deletes
// leave a tombstone so a late older insert cannot resurrect the row. With
// shard_key set, every filter carries the shard key beside _id and a
// shard key change moves the document (delete at the old value first).
//
// Only validated values reach the server: filter values are scalars, and
// field names that MongoDB would read as operators or paths send their
// row to the dead letter. Write errors that name a row are permanent for
// that row; the rest of the bulk is applied.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/keymap"
)

var (
	_ cdc.Sink          = (*Projector)(nil)
	_ cdc.Filter        = (*Projector)(nil)
	_ cdc.SchemaChecker = (*Projector)(nil)
	_ cdc.Pinger        = (*Projector)(nil)
)

// Projector writes row changes to MongoDB. It is safe for concurrent use.
type Projector struct {
	client   *mongo.Client
	own      bool // Close disconnects the client
	tables   *cdc.Tables[*rule]
	bulkSize int
	wc       *writeconcern.WriteConcern // nil: the client's
	wtimeout time.Duration              // bound of one bulk write; 0: none
	logger   *slog.Logger
	colls    sync.Map // "db\x00coll" -> *target
}

// rule is a compiled TableConfig.
type rule struct {
	cfg          TableConfig
	pk           []string
	database     string // "" = the event's database
	collection   string // "" = the event's table
	tmpl         *keymap.Template
	rename       map[string]string
	include      map[string]bool
	exclude      map[string]bool
	metadata     string
	versionField string
	shardKey     []string
	tombstoneTTL time.Duration
	conv         converter
	indexes      []mongo.IndexModel
}

// target is one collection and whether its indexes exist.
type target struct {
	db, name string
	coll     *mongo.Collection
	rule     *rule

	mu    sync.Mutex
	ready bool // indexes created
}

// Open connects to cfg.URI and returns a projector that owns the client:
// Close disconnects it.
func Open(ctx context.Context, cfg Config, rules []cdc.TableRule[TableConfig], logger *slog.Logger) (*Projector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := options.Client().ApplyURI(cfg.URI)
	if cfg.RetryWrites != nil {
		opts.SetRetryWrites(*cfg.RetryWrites)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect mongodb: %w", err)
	}
	p, err := New(ctx, client, cfg, rules, logger)
	if err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	p.own = true
	return p, nil
}

// New returns a projector writing through client, which the caller owns
// (cfg.URI is ignored). It creates the declared indexes of every rule whose
// target collection is known without an event (an explicit database and
// collection, or a literal match such as "shop\\.users"); the others are
// created on first use.
func New(ctx context.Context, client *mongo.Client, cfg Config, rules []cdc.TableRule[TableConfig], logger *slog.Logger) (*Projector, error) {
	if client == nil {
		return nil, errors.New("mongo projector: nil client")
	}
	if err := cfg.validateOptions(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	compiled := make([]cdc.TableRule[*rule], len(rules))
	var errs []error
	for i, tr := range rules {
		if tr.Match == nil {
			errs = append(errs, fmt.Errorf("tables[%d]: no match pattern", i))
			continue
		}
		r, err := compile(tr, cfg)
		if err != nil {
			errs = append(errs, prefixErrs(fmt.Sprintf("tables[%d]", i), err))
			continue
		}
		compiled[i] = cdc.TableRule[*rule]{Match: tr.Match, PK: tr.PK, Config: r}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p := &Projector{
		client:   client,
		tables:   cdc.NewTables(compiled),
		bulkSize: cfg.bulkSize(),
		wtimeout: cfg.WriteConcern.WTimeout,
		logger:   logger,
	}
	if w, _ := cfg.WriteConcern.w(); w != nil || cfg.WriteConcern.J != nil {
		p.wc = &writeconcern.WriteConcern{W: w, Journal: cfg.WriteConcern.J}
	}
	for _, tr := range compiled {
		db, table, ok := literalTable(tr.Match.String())
		r := tr.Config
		if r.database != "" {
			db = r.database
		}
		if r.collection != "" {
			table = r.collection
		}
		if !ok && (r.database == "" || r.collection == "") {
			continue // the target depends on the event
		}
		if len(r.indexes) == 0 && r.versionField == "" {
			continue
		}
		if err := p.ensure(ctx, p.target(db, table, r)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func prefixErrs(p string, err error) error {
	var errs []error
	for _, e := range unjoin(err) {
		errs = append(errs, fmt.Errorf("%s.%w", p, e))
	}
	return errors.Join(errs...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func compile(tr cdc.TableRule[TableConfig], cfg Config) (*rule, error) {
	c := tr.Config
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := &rule{
		cfg:          c,
		pk:           tr.PK,
		database:     c.Database,
		collection:   c.Collection,
		rename:       c.Rename,
		metadata:     c.Metadata,
		versionField: c.VersionField,
		shardKey:     c.ShardKey,
		tombstoneTTL: c.TombstoneTTL,
		conv:         converter{loc: time.UTC, decimal: cfg.Decimal},
	}
	if r.tombstoneTTL == 0 {
		r.tombstoneTTL = DefaultTombstoneTTL
	}
	if c.ID != "" {
		r.tmpl, _ = keymap.Parse(c.ID) // checked by Validate
	}
	if c.DatetimeZone != "" {
		r.conv.loc, _ = time.LoadLocation(c.DatetimeZone)
	}
	if len(c.Include) > 0 {
		r.include = set(c.Include)
	}
	r.exclude = set(c.Exclude)
	for _, ix := range c.Indexes {
		keys := bson.D{}
		for _, k := range ix.Keys {
			keys = append(keys, bson.E{Key: k.Field, Value: int32(k.Order)})
		}
		o := options.Index()
		if ix.Unique {
			o.SetUnique(true)
		}
		if ix.Name != "" {
			o.SetName(ix.Name)
		}
		r.indexes = append(r.indexes, mongo.IndexModel{Keys: keys, Options: o})
	}
	return r, nil
}

func set(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// literalTable returns db and table when the anchored match pattern names
// exactly one table ("^(?:shop\.users)$").
func literalTable(pattern string) (db, table string, ok bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", "", false
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		re = re.Sub[0]
	}
	var lit []rune
	switch re.Op {
	case syntax.OpLiteral:
	case syntax.OpConcat:
		subs := re.Sub
		if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
			subs = subs[1:]
		}
		if len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText {
			subs = subs[:len(subs)-1]
		}
		if len(subs) != 1 || subs[0].Op != syntax.OpLiteral || re.Sub[0].Op != syntax.OpBeginText ||
			re.Sub[len(re.Sub)-1].Op != syntax.OpEndText {
			return "", "", false
		}
		re = subs[0]
	default:
		return "", "", false
	}
	if re.Flags&syntax.FoldCase != 0 {
		return "", "", false
	}
	lit = re.Rune
	db, table, ok = strings.Cut(string(lit), ".")
	return db, table, ok && db != "" && table != ""
}

// Wants reports whether a rule matches db.table.
func (p *Projector) Wants(db, table string) bool { return p.tables.Lookup(db, table) != nil }

// Ping checks that the primary answers.
func (p *Projector) Ping(ctx context.Context) error {
	if err := p.client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("ping mongodb: %w", err)
	}
	return nil
}

// Close disconnects the client if Open created it.
func (p *Projector) Close(ctx context.Context) error {
	if !p.own {
		return nil
	}
	if err := p.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("disconnect mongodb: %w", err)
	}
	return nil
}

// CheckSchema checks the rule for db.table against the table's columns
// and primary key (cdc.SchemaChecker): id, include, exclude, rename and the
// configured pk may name only known columns, a keyless table needs a
// configured pk, and version_field and metadata must not shadow a written
// column. It returns nil for a table no rule matches.
func (p *Projector) CheckSchema(db, table string, columns, pk []string) error {
	tr := p.tables.Lookup(db, table)
	if tr == nil {
		return nil
	}
	r := tr.Config
	known := set(columns)
	var errs []error
	if len(pk) == 0 && len(tr.PK) == 0 {
		errs = append(errs, errors.New("the table has no primary key: set pk: [columns]"))
	}
	if r.tmpl != nil {
		if err := r.tmpl.CheckColumns(columns); err != nil {
			errs = append(errs, fmt.Errorf("id: %w", err))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.include)) {
		if !known[name] {
			errs = append(errs, fmt.Errorf("include: unknown column %q", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.exclude)) {
		if !known[name] {
			errs = append(errs, fmt.Errorf("exclude: unknown column %q", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.rename)) {
		if !known[name] {
			errs = append(errs, fmt.Errorf("rename: unknown column %q", name))
		}
	}
	for _, pk := range tr.PK {
		if !known[pk] {
			errs = append(errs, fmt.Errorf("pk: unknown column %q", pk))
		}
	}
	for _, col := range r.shardKey {
		if !known[col] {
			errs = append(errs, fmt.Errorf("shard_key: unknown column %q", col))
		}
	}
	for _, col := range columns {
		if !r.keep(col) {
			continue
		}
		f := r.field(col)
		if err := checkStoredName(f); err != nil {
			errs = append(errs, fmt.Errorf("column %q: %w; rename or exclude it", col, err))
		}
		if r.versionField != "" && f == r.versionField {
			errs = append(errs, fmt.Errorf("version_field: %q is also the field of column %q; exclude or rename it", f, col))
		}
		if r.metadata != "" && f == r.metadata {
			errs = append(errs, fmt.Errorf("metadata: %q is also the field of column %q; exclude or rename it", f, col))
		}
	}
	return errors.Join(errs...)
}

func (r *rule) keep(name string) bool {
	if r.include != nil {
		return r.include[name]
	}
	return !r.exclude[name]
}

func (r *rule) field(col string) string {
	if f, ok := r.rename[col]; ok {
		return f
	}
	return col
}

// target returns the cached collection handle for db.name.
func (p *Projector) target(db, name string, r *rule) *target {
	key := db + "\x00" + name
	if t, ok := p.colls.Load(key); ok {
		return t.(*target)
	}
	var opts []options.Lister[options.CollectionOptions]
	if p.wc != nil {
		opts = append(opts, options.Collection().SetWriteConcern(p.wc))
	}
	t := &target{db: db, name: name, rule: r, coll: p.client.Database(db).Collection(name, opts...)}
	if len(r.indexes) == 0 && r.versionField == "" {
		t.ready = true
	}
	actual, _ := p.colls.LoadOrStore(key, t)
	return actual.(*target)
}

// ensure creates the target's declared indexes and, for guarded rules, the
// tombstone TTL index, once.
func (p *Projector) ensure(ctx context.Context, t *target) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ready {
		return nil
	}
	r := t.rule
	// One createIndexes per index: a server that cannot build one says
	// which.
	for _, ix := range r.indexes {
		if _, err := t.coll.Indexes().CreateOne(ctx, ix); err != nil {
			return fmt.Errorf("create index %v on %s.%s: %w", ix.Keys, t.db, t.name, err)
		}
	}
	if r.versionField != "" {
		ttl := mongo.IndexModel{
			Keys: bson.D{{Key: DeletedAtField, Value: int32(1)}},
			Options: options.Index().SetName("rowsync_tombstone_ttl").
				SetExpireAfterSeconds(int32(r.tombstoneTTL / time.Second)),
		}
		if _, err := t.coll.Indexes().CreateOne(ctx, ttl); err != nil {
			var ce mongo.CommandError
			if !errors.As(err, &ce) || ce.Code != codeNotImplemented && ce.Code != codeCommandNotSupported {
				return fmt.Errorf("create tombstone ttl index on %s.%s: %w", t.db, t.name, err)
			}
			// A server without TTL indexes: tombstones then stay.
			p.logger.Warn("server has no TTL indexes; guarded deletes leave tombstones that never expire",
				"db", t.db, "collection", t.name, "err", err)
		}
	}
	t.ready = true
	return nil
}

// Server error codes the projector tells apart.
const (
	codeDuplicateKey        = 11000
	codeCommandNotSupported = 115
	codeNotImplemented      = 238
)

// transientCode reports write error codes that say nothing about the row:
// the same write can succeed later. Every other write error names a row
// that can never be written as it is (a duplicate key on a unique index, an
// immutable _id, a validator, a document too large, a bad field name) and
// sends that row to the dead letter instead of retrying for ever.
func transientCode(code int) bool {
	switch code {
	case 6, // HostUnreachable
		7,     // HostNotFound
		24,    // LockTimeout
		46,    // LockBusy
		50,    // MaxTimeMSExpired
		64,    // WriteConcernFailed
		89,    // NetworkTimeout
		91,    // ShutdownInProgress
		112,   // WriteConflict
		133,   // FailedToSatisfyReadPreference
		189,   // PrimarySteppedDown
		262,   // ExceededTimeLimit
		9001,  // SocketException
		10107, // NotWritablePrimary
		11600, // InterruptedAtShutdown
		11601, // Interrupted
		11602, // InterruptedDueToReplStateChange
		13435, // NotPrimaryNoSecondaryOk
		13436: // NotPrimaryOrSecondary
		return true
	}
	return false
}
