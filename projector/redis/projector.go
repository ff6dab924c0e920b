// Package redis projects row changes into Redis hashes: one hash per row,
// named by a key template, holding exactly the row's current non-NULL
// columns in MySQL text form (cdc.FormatText).
//
// Apply coalesces its events per key (only each key's final state is
// written) and splits the keys into chunks of up to Config.ScriptKeys, each
// sent in one round trip as one MULTI/EXEC transaction, so readers never
// see a half-written row or stale fields, and concurrent Apply calls never
// interleave inside a chunk.
//
// A table without version_field (the default) takes the fast path: per
// chunk one DEL of every key the chunk replaces or deletes, then an HSET
// (and PEXPIRE with a ttl) per new row image. On such a table rowsync owns
// the key namespace: a value of another type at a row's key is replaced,
// not reported. type_check: true keeps the checked path below for it.
//
// A table with version_field (or type_check) takes the checked path: every
// new row image is written to a staging key beside its row key (DEL, HSET,
// PEXPIRE), then a Lua script RENAMEs each staging key over its row key or
// deletes the row, after checking that the key holds a hash (else the
// change fails with ErrWrongType and the key is left alone). RENAME
// replaces the old hash whole, in one step; and raw HSETs cost Redis far
// less than HSETs issued from Lua, which is why the image is not written by
// the script itself. With a version_field the script first compares
// versions and drops a stale image instead, and a delete leaves a
// tombstone holding its version, so replays and late redeliveries can
// neither roll a row back nor resurrect it. The check and the script cost
// Redis several times the CPU of the fast path per row.
//
// Redis Cluster: a transaction and a script may only touch keys of one
// slot. In cluster mode the ops of an Apply call are grouped by slot, and
// the staging and tombstone keys are named to share their row key's slot:
// key+suffix when the key has a hash tag, else "{key}"+suffix. A key
// containing "}" but no hash tag cannot be placed so; in cluster mode the
// changes of such a key on a checked table fail permanently (give such
// templates a hash tag, e.g. "user:{{{id}}}").
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/keymap"
)

var (
	_ cdc.Sink          = (*Projector)(nil)
	_ cdc.Filter        = (*Projector)(nil)
	_ cdc.SchemaChecker = (*Projector)(nil)
	_ cdc.Pinger        = (*Projector)(nil)
)

// ErrWrongType is wrapped by the per-event error of a change whose key holds
// a Redis value that is not a hash, on a table with version_field or
// type_check; the projector leaves such keys alone. Other tables replace
// such values.
var ErrWrongType = errors.New("key holds a non-hash value (WRONGTYPE)")

// Projector is a cdc.Sink writing one Redis hash per row. It is safe for
// concurrent use.
type Projector struct {
	client goredis.UniversalClient
	// conns are the projector's own connections for the chunks of a
	// single-node client (see conn.go); nil on the go-redis path.
	conns   *connPool
	tables  *cdc.Tables[*rule]
	cfg     Config
	cluster bool
	log     *slog.Logger
	script  *luaScript
	// plans keeps the plans of finished Apply calls for later ones.
	plans sync.Pool
}

// rule is a compiled TableConfig.
type rule struct {
	tmpl         *keymap.Template
	tmplCols     []string
	usesPK       bool
	pk           []string
	include      map[string]bool
	exclude      map[string]bool
	ttlMS        string
	versionField string
	// checked sends unguarded ops through the commit script too, for its
	// type check (type_check).
	checked    bool
	tombTTLMS  string
	tombSuffix string
}

// New returns a projector with the default Config. See NewWithConfig.
func New(client goredis.UniversalClient, rules []cdc.TableRule[TableConfig], logger *slog.Logger) (*Projector, error) {
	return NewWithConfig(Config{}, client, rules, logger)
}

// NewWithConfig returns a projector for the tables rules match (first
// match wins). It validates every rule and refuses a key template that
// does not read the row. A template using {pk} is accepted: the primary
// key comes from each event, or from the rule's PK when the event has
// none; an event with neither fails permanently (dead letter).
//
// The caller owns client: Close does not close it. For a single-node
// client (*goredis.Client: standalone or failover) the projector writes
// its transactions on connections of its own, dialled with the client's
// Options (Dialer, TLS, credentials, DB, timeouts): one per transaction
// in flight, at most Config.Parallel kept idle at rest, all closed by
// Close; a cluster client, or a client whose options need go-redis (see
// usesGoRedis), is written through.
// logger may be nil; the caller names the sink in it (attribute sink, as
// the pipeline route).
func NewWithConfig(cfg Config, client goredis.UniversalClient, rules []cdc.TableRule[TableConfig], logger *slog.Logger) (*Projector, error) {
	if client == nil {
		return nil, errors.New("redis projector: nil client")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	errs := []error{}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	compiled := make([]cdc.TableRule[*rule], 0, len(rules))
	for i, tr := range rules {
		r, err := compile(tr)
		if err != nil {
			errs = append(errs, prefixErrs(fmt.Sprintf("tables[%d].", i), err))
			continue
		}
		compiled = append(compiled, cdc.TableRule[*rule]{Match: tr.Match, PK: tr.PK, Config: r})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("redis projector: %w", err)
	}
	_, cluster := client.(*goredis.ClusterClient)
	var conns *connPool
	if c, ok := client.(*goredis.Client); ok {
		if why := usesGoRedis(c.Options()); why == "" {
			conns = newConnPool(c.Options(), cfg.parallel())
		} else {
			logger.Debug("redis projector writes through go-redis", "reason", why)
		}
	}
	return &Projector{
		client:  client,
		conns:   conns,
		tables:  cdc.NewTables(compiled),
		cfg:     cfg,
		cluster: cluster,
		log:     logger,
		script:  script,
	}, nil
}

// prefixErrs prefixes every joined error's message with p.
func prefixErrs(p string, err error) error {
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, fmt.Errorf("%s%w", p, e))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s%w", p, err)
}

func compile(tr cdc.TableRule[TableConfig]) (*rule, error) {
	c := tr.Config
	var errs []error
	if tr.Match == nil {
		errs = append(errs, errors.New("match: required"))
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t, _ := c.template() // checked by Validate
	r := &rule{
		tmpl:         t,
		tmplCols:     t.Columns(),
		usesPK:       t.UsesPK(),
		pk:           tr.PK,
		ttlMS:        strconv.FormatInt(c.TTL.Milliseconds(), 10),
		versionField: c.VersionField,
		checked:      c.TypeCheck || c.VersionField != "",
	}
	if len(c.Include) > 0 {
		r.include = set(c.Include)
	}
	if len(c.Exclude) > 0 {
		r.exclude = set(c.Exclude)
	}
	if c.VersionField != "" {
		tt := c.TombstoneTTL
		if tt == 0 {
			tt = DefaultTombstoneTTL
		}
		r.tombTTLMS = strconv.FormatInt(tt.Milliseconds(), 10)
		r.tombSuffix = c.TombstoneSuffix
		if r.tombSuffix == "" {
			r.tombSuffix = DefaultTombstoneSuffix
		}
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

// Wants reports whether a rule matches db.table.
func (p *Projector) Wants(db, table string) bool { return p.tables.Lookup(db, table) != nil }

// Ping checks that Redis answers, on the connections the chunks use: the
// projector's own when it has them (a dial, AUTH or SELECT that fails
// only there must fail readiness too), else the client's.
func (p *Projector) Ping(ctx context.Context) error {
	if p.conns != nil {
		if err := p.conns.ping(ctx); err != nil {
			return fmt.Errorf("redis ping: %w", err)
		}
		return nil
	}
	if err := p.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Close closes the projector's own connections (those in use when their
// chunk ends); the caller owns the client. An Apply after Close fails.
func (p *Projector) Close(ctx context.Context) error {
	if p.conns != nil {
		p.conns.close()
	}
	return nil
}

// CheckSchema checks the rule for db.table against the table's columns
// and primary key (cdc.SchemaChecker): the key template, include and
// exclude may name only known columns, a {pk} key needs a primary key or
// a configured pk, and a version_field must not shadow a column that is
// written to the hash. It returns nil for a table no rule matches.
func (p *Projector) CheckSchema(db, table string, columns, pk []string) error {
	tr := p.tables.Lookup(db, table)
	if tr == nil {
		return nil
	}
	r := tr.Config
	known := set(columns)
	var errs []error
	if err := r.tmpl.CheckColumns(columns); err != nil {
		errs = append(errs, fmt.Errorf("key: %w", err))
	}
	if r.usesPK && len(pk) == 0 && len(tr.PK) == 0 {
		errs = append(errs, fmt.Errorf("key %q needs {pk} but the table has no primary key: set pk: [columns] or a key template without {pk}", r.tmpl))
	}
	for name := range r.include {
		if !known[name] {
			errs = append(errs, fmt.Errorf("include: unknown column %q", name))
		}
	}
	for name := range r.exclude {
		if !known[name] {
			errs = append(errs, fmt.Errorf("exclude: unknown column %q", name))
		}
	}
	for _, pk := range tr.PK {
		if !known[pk] {
			errs = append(errs, fmt.Errorf("pk: unknown column %q", pk))
		}
	}
	if r.versionField != "" && known[r.versionField] && r.keep(r.versionField) {
		errs = append(errs, fmt.Errorf("version_field: %q is also a column of %s.%s; exclude it or pick another name", r.versionField, db, table))
	}
	return errors.Join(errs...)
}

// Apply writes the final state of every key the events touch. Events of a
// key must come in source order. Row-specific failures (a key that cannot
// be rendered, a key holding a non-hash) come back as a *cdc.BatchError,
// the other events being applied; any other error is transient and
// nothing is known about which events applied (replaying is harmless).
func (p *Projector) Apply(ctx context.Context, events []cdc.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	pl := p.getPlan(len(events))
	defer p.putPlan(pl)
	var tr *cdc.TableRule[*rule]
	var lastDB, lastTable string
	for i := range events {
		e := &events[i]
		if i == 0 || e.DB != lastDB || e.Table != lastTable {
			tr, lastDB, lastTable = p.tables.Lookup(e.DB, e.Table), e.DB, e.Table
		}
		if tr == nil {
			continue // not ours; a Filter-aware pipeline never sends it
		}
		pl.add(i, e, tr.Config)
	}
	chunks := p.encode(events, pl)
	res, err := p.run(ctx, chunks)
	if err != nil {
		return err
	}
	stale := 0
	for ci, r := range res {
		stale += r.stale
		for _, n := range r.bad {
			o := chunks[ci].ops[n]
			for _, i := range o.events() {
				pl.failed.Fail(i, fmt.Errorf("%w: %s: %w", cdc.ErrPermanent, o.key, ErrWrongType))
			}
		}
	}
	if stale > 0 {
		p.log.DebugContext(ctx, "skipped stale changes", "count", stale)
	}
	if pl.failed.Err() == nil {
		return nil
	}
	// The plan goes back to the pool: the error gets its own copy.
	return &cdc.BatchError{Failed: pl.failed.Failed}
}

// getPlan returns an empty plan for n events, one an earlier call left
// when there is one: its buffers are what a call allocated most of.
func (p *Projector) getPlan(n int) *plan {
	pl, _ := p.plans.Get().(*plan)
	if pl == nil {
		return newPlan(n)
	}
	pl.prepare(n)
	return pl
}

// putPlan keeps pl for a later call. Nothing of it may be used after.
func (p *Projector) putPlan(pl *plan) {
	pl.reset()
	p.plans.Put(pl)
}

// stageSuffix names the staging key a new row image is written to before
// the commit script renames it over the row key (see commitScript). Both
// run in one transaction, so a staging key outlives it only if the script
// fails part way; the next write of the row deletes it first.
const stageSuffix = ":rowsync-stage"

// chunk is one MULTI/EXEC transaction: one DEL, the HSET (and PEXPIRE)
// commands, then, if it has checked ops, one commit script call.
type chunk struct {
	// n counts the ops of the chunk, fast and checked.
	n int
	// ops are the checked ops (into plan.ops), numbered as the script
	// numbers them.
	ops []*op
	// dels is a DEL of the row keys of the fast ops and of the staging
	// keys of the checked writes.
	dels []any
	// writes are the HSET (and PEXPIRE) commands, as argument lists.
	writes [][]any
	// keys and args are the commit script's KEYS and ARGV.
	keys []string
	args []any
	// cmds is scratch space for runChunkGoRedis's commands, eval, sha
	// and nkeys for the EVALSHA of both paths (see evalSha).
	cmds       []goredis.Cmder
	eval       []any
	sha, nkeys string
}

// evalSha returns the arguments of the commit script's call: EVALSHA sha
// numkeys KEYS... ARGV...
func (c *chunk) evalSha(sha string) []any {
	c.sha, c.nkeys = sha, strconv.Itoa(len(c.keys))
	a := append(c.eval[:0], "evalsha", &c.sha, &c.nkeys)
	for i := range c.keys {
		a = append(a, &c.keys[i])
	}
	c.eval = append(a, c.args...)
	return c.eval
}

// reset empties c for reuse, dropping its references.
func (c *chunk) reset() {
	c.n = 0
	c.ops, c.dels, c.writes = truncate(c.ops), truncate(c.dels), truncate(c.writes)
	c.keys, c.args, c.cmds, c.eval = truncate(c.keys), truncate(c.args), truncate(c.cmds), truncate(c.eval)
}

// truncate empties s for reuse, zeroing its elements so the backing
// array keeps no references alive.
func truncate[S ~[]E, E any](s S) S {
	clear(s)
	return s[:0]
}

// newChunk returns an empty chunk for up to n ops, holding a DEL.
func (pl *plan) newChunk(n int) *chunk {
	if pl.nchunks == len(pl.chunks) {
		pl.chunks = append(pl.chunks, &chunk{})
	}
	c := pl.chunks[pl.nchunks]
	pl.nchunks++
	c.writes = slices.Grow(c.writes, n)
	c.dels = append(slices.Grow(c.dels, n+1), "del")
	return c
}

// encode groups ops into chunks: by slot in cluster mode, in order, at
// most ScriptKeys ops each. See commitScript for the layout of the
// checked ops. The chunks and their argument lists live in pl.
func (p *Projector) encode(events []cdc.Event, pl *plan) []*chunk {
	max := p.cfg.scriptKeys()
	var chunks []*chunk
	var open map[uint16]*chunk // cluster: the open chunk of each slot
	if p.cluster {
		open = map[uint16]*chunk{}
	}
	var cur *chunk
	// pl.args holds the HSET and PEXPIRE argument lists of all writes,
	// sized here for the whole call so that it does not regrow (a
	// regrowth is harmless: the lists already made keep the old array).
	need := 0
	for oi := range pl.ops {
		if o := &pl.ops[oi]; o.kind == opWrite {
			need += 2*events[o.ev].After.Len() + 7
		}
	}
	arena := slices.Grow(pl.args[:0], need)
	defer func() { pl.args = arena }()
	for oi := range pl.ops {
		o := &pl.ops[oi]
		r := o.rule
		guarded := o.version != 0
		checked := r.checked
		kind := o.kind
		var ver *string
		if guarded {
			ver = pl.str(pl.textString(func(b []byte) []byte { return strconv.AppendUint(b, o.version, 10) }))
		}
		var fields []any
		if kind == opWrite {
			at := len(arena)
			arena = append(arena, "hset", nil)
			e := &events[o.ev]
			arena = pl.fields(arena, r, e, e.After)
			if guarded {
				arena = append(arena, &r.versionField, ver)
			}
			fields = arena[at:len(arena):len(arena)]
			if len(fields) == 2 {
				// Every column NULL or filtered out: an empty hash does
				// not exist in Redis, so the row's key goes away.
				kind, fields = opDelete, nil
				arena = arena[:at]
			}
		}
		var stage, tomb string
		sameSlot := true
		switch {
		case kind == opWrite && checked:
			var ok bool
			stage, ok = pl.sideKey(o.key, stageSuffix)
			sameSlot = sameSlot && ok
			fields[1] = pl.str(stage)
		case kind == opWrite:
			fields[1] = &o.key
		}
		if guarded {
			var ok bool
			tomb, ok = pl.sideKey(o.key, r.tombSuffix)
			sameSlot = sameSlot && ok
		}
		if !sameSlot && p.cluster {
			for _, i := range o.events() {
				pl.permanent(i, fmt.Errorf("key %q contains \"}\" without a hash tag, so its staging and tombstone keys cannot share its cluster slot", o.key))
			}
			continue
		}
		c := cur
		if p.cluster {
			s := slot(o.key)
			c = open[s]
			if c == nil || c.n >= max {
				c = pl.newChunk(0)
				open[s] = c
				chunks = append(chunks, c)
			}
		} else if c == nil || c.n >= max {
			c = pl.newChunk(min(max, len(pl.ops)-oi))
			cur = c
			chunks = append(chunks, c)
		}
		c.n++
		var expire []any
		if kind == opWrite && r.ttlMS != "0" {
			at := len(arena)
			arena = append(arena, "pexpire", fields[1], &r.ttlMS)
			expire = arena[at:len(arena):len(arena)]
		}
		if !checked {
			// Fast path: DEL, then HSET the new image, in one
			// transaction; no type check, no staging key.
			c.dels = append(c.dels, &o.key)
			if kind == opWrite {
				c.writes = append(c.writes, fields)
				if expire != nil {
					c.writes = append(c.writes, expire)
				}
			}
			continue
		}
		c.ops = append(c.ops, o)
		c.keys = append(c.keys, o.key)
		switch {
		case kind == opWrite:
			c.dels = append(c.dels, fields[1])
			c.keys = append(c.keys, stage)
			c.writes = append(c.writes, fields)
			if expire != nil {
				c.writes = append(c.writes, expire)
			}
			if guarded {
				c.keys = append(c.keys, tomb)
				c.args = append(c.args, "W", ver, &r.versionField)
			} else {
				c.args = append(c.args, "w")
			}
		case guarded:
			c.keys = append(c.keys, tomb)
			c.args = append(c.args, "D", ver, &r.versionField, &r.tombTTLMS)
		default:
			c.args = append(c.args, "d")
		}
	}
	return chunks
}

// result is a parsed script reply: stale count and 0-based bad ops.
type result struct {
	stale int
	bad   []int
}

// run sends every chunk as one MULTI/EXEC transaction (DEL, HSETs, then
// the commit script if the chunk has checked ops), several chunks at once
// on separate connections. The transaction keeps readers from seeing a row
// between its DEL and its HSET, keeps concurrent Apply calls from mixing
// their writes (two rows may share a key through a template on a
// non-unique column, and then go to different shards) and, as a client
// that dies before EXEC runs nothing, leaves no staging key behind.
func (p *Projector) run(ctx context.Context, chunks []*chunk) ([]result, error) {
	res := make([]result, len(chunks))
	if len(chunks) == 1 {
		r, err := p.runChunk(ctx, chunks[0])
		res[0] = r
		return res, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.cfg.parallel())
	for ci := range chunks {
		g.Go(func() error {
			r, err := p.runChunk(gctx, chunks[ci])
			res[ci] = r
			return err
		})
	}
	return res, g.Wait()
}

// runChunk runs one chunk, on the projector's own connections when it has
// them (runChunkRESP), else through go-redis. If the commit script is
// missing from the server (restart, failover, SCRIPT FLUSH) it is loaded
// and the chunk re-sent: every command in it is idempotent.
func (p *Projector) runChunk(ctx context.Context, c *chunk) (result, error) {
	if p.conns != nil {
		return p.runChunkRESP(ctx, c)
	}
	return p.runChunkGoRedis(ctx, c)
}

// runChunkGoRedis runs one chunk as a go-redis TxPipeline.
func (p *Projector) runChunkGoRedis(ctx context.Context, c *chunk) (result, error) {
	for attempt := 0; ; attempt++ {
		pipe := p.client.TxPipeline()
		// The commands go in at once: the pipeline copies the list once
		// instead of regrowing it per command.
		cmds := c.cmds[:0]
		if len(c.dels) > 1 {
			cmds = append(cmds, goredis.NewCmd(ctx, c.dels...))
		}
		for _, w := range c.writes {
			cmds = append(cmds, goredis.NewCmd(ctx, w...))
		}
		var commit *goredis.Cmd
		if len(c.ops) > 0 {
			// EVALSHA as Script.EvalSha sends it, with the keys passed
			// by pointer: that boxes each key string, an allocation.
			commit = goredis.NewCmd(ctx, c.evalSha(p.script.sha)...)
			commit.SetFirstKeyPos(3)
			cmds = append(cmds, commit)
		}
		c.cmds = cmds
		_ = pipe.BatchProcess(ctx, cmds...)
		cmds, err := pipe.Exec(ctx) // command errors are read one by one below
		for _, cmd := range cmds {
			if err := cmd.Err(); err != nil && cmd != commit {
				return result{}, fmt.Errorf("redis apply: %s: %w", cmd.Name(), err)
			}
		}
		if commit == nil {
			if err != nil {
				return result{}, fmt.Errorf("redis apply: %w", err)
			}
			return result{}, nil
		}
		err = commit.Err()
		if goredis.HasErrorPrefix(err, "NOSCRIPT") && attempt < 2 {
			if err := p.script.g.Load(ctx, p.client).Err(); err != nil {
				return result{}, fmt.Errorf("redis script load: %w", err)
			}
			continue
		}
		if err != nil {
			return result{}, fmt.Errorf("redis apply: commit: %w", err)
		}
		r, err := parseResult(commit.Val(), len(c.ops))
		if err != nil {
			return result{}, fmt.Errorf("redis apply: %w", err)
		}
		return r, nil
	}
}

func parseResult(v any, nops int) (result, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return result{}, fmt.Errorf("unexpected script reply %v", v)
	}
	var r result
	for i, x := range arr {
		n, ok := x.(int64)
		if !ok {
			return result{}, fmt.Errorf("unexpected script reply element %v", x)
		}
		if i == len(arr)-1 {
			r.stale = int(n)
			continue
		}
		if n < 1 || int(n) > nops {
			return result{}, fmt.Errorf("script reply names op %d of %d", n, nops)
		}
		r.bad = append(r.bad, int(n)-1)
	}
	return r, nil
}
