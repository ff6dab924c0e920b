// Package binlog is rowsync's direct MySQL/MariaDB binlog source: it
// registers as a replica (go-mysql's BinlogSyncer), decodes ROW events into
// cdc.Events with values typed by the column definitions, and checkpoints
// the position after the last complete transaction of each acked batch.
//
// Batches close as soon as nothing more has been received and they end at
// a transaction boundary, so an idle server's commit is delivered at once;
// MaxWait only bounds how long a batch collects a burst. Checkpoints are
// written in the background, the newest acked one at most every
// CheckpointInterval (see checkpoint.Saver): a crash replays at most that
// much, which the idempotent sinks absorb.
//
// The server needs binlog_format=ROW and binlog_row_image=FULL;
// binlog_row_metadata=FULL (MySQL 8.0.1+, MariaDB 10.5+) lets column names
// travel with every event, so events written before an ALTER TABLE still
// decode by name. Without it, names come from information_schema by position.
package binlog

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/checkpoint"
	"github.com/rowsync/rowsync/internal/backoff"
	"github.com/rowsync/rowsync/metrics"
	"github.com/rowsync/rowsync/mysqlmeta"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("binlog source closed")

// ErrPositionGone means the binlog position to resume from no longer exists
// on the server (the file was purged, or the offset lies beyond its end).
// Retrying cannot help: re-snapshot, or clear the checkpoint and set start.
var ErrPositionGone = errors.New("binlog position no longer on the server")

// ErrUnsupported means the binlog holds something rowsync cannot turn into
// row changes for a watched table: an event type it does not know, a
// statement-logged change, a row image missing columns on a table without
// refetch. Skipping it would lose changes silently, so the stream stops;
// the message names the event, its position and what to change.
var ErrUnsupported = errors.New("binlog change rowsync cannot apply")

// Source streams row changes from a server's binlog. Next is called from
// one goroutine; Ack, Lag, Checkpoint and Close are safe from any.
type Source struct {
	cfg    Config
	log    *slog.Logger
	store  checkpoint.Store
	db     *sql.DB
	cat    *mysqlmeta.Catalog
	flavor string
	filter *tableFilter
	tls    *tls.Config // nil without TLS

	// stream state, owned by the goroutine calling Next
	syncer      *replication.BinlogSyncer
	stream      *replication.BinlogStreamer
	file        string // binlog file being read
	inTx        bool   // between BEGIN/GTID and XID/COMMIT
	pendingGTID string // GTID of the open transaction (MySQL's, as text)
	// pendingMaria is the open transaction's MariaDB GTID, zero for none:
	// kept as the event gives it, since formatting it for gset.Update,
	// which parses it again, cost a transaction two fmt and three strconv
	// calls and as many allocations.
	pendingMaria mysql.MariadbGTID
	gset         mysql.GTIDSet // executed set at the last tx end; nil if unknown
	txEnd        checkpoint.Position
	txEndSeq     uint64 // bumps at every tx end
	returnedSeq  uint64 // txEndSeq of the last batch returned
	// readVer is the version of the position read to while no
	// transaction is open and no event waits past the last tx end (it
	// also moves over events outside transactions, such as MariaDB's
	// binlog checkpoints, which end no transaction); readSeq bumps when
	// it moves, returnedRead is readSeq of the last batch returned.
	readVer, readSeq, returnedRead uint64
	cur                            []cdc.Event
	curRejects                     []cdc.Reject
	curTxIdx                       int // len(cur) at the last tx end
	curTxRej                       int
	txStarted                      time.Time                  // when the open transaction's first row was read; zero if none
	backlog                        []*replication.BinlogEvent // received, not yet handled (from DumpEvents)
	backlogAt                      int
	lastLen                        int // events in the last batch: the next one's starting capacity
	tables                         map[string]*cdc.TableDef
	plans                          map[string]*plan
	keyBuf                         []byte // rows: the plans key of a table map, built without allocating
	schemaGen                      uint64
	jsonPrev                       jsonCache // JSON values for partial updates without them
	// rowPool holds the rows of acked batches; curRows are the rows
	// taken for cur's events (nil until the first), recycled when the
	// batch holding them is acked.
	rowPool cdc.RowPool
	curRows *cdc.BatchRows
	// freeEvents holds the event lists of acked batches (at most
	// maxFreeEvents), which cur is taken from (see eventList).
	freeMu     sync.Mutex
	freeEvents [][]cdc.Event
	// load reads a table's current definition (information_schema)
	load func(ctx context.Context, db, table string) (*cdc.TableDef, error)

	saver *checkpoint.Saver
	// saveWarned rate-limits the warning about failing checkpoint saves.
	saveWarned time.Time
	ackMu      sync.Mutex
	ackSeq     uint64 // txEndSeq of the newest acked checkpoint
	nacked     error  // set by a nack: no more checkpoints, Next fails

	reconnects *metrics.Counter // nil (no-op) unless Instrument was called

	lastCommit atomic.Int64 // unix seconds of the last row event's header
	caughtUp   atomic.Bool

	mu     sync.Mutex // guards closed and the syncer pointer against Close
	closed bool
}

var _ cdc.Source = (*Source)(nil)

// New connects, finds the start position (the store's checkpoint if it has
// one, else cfg.Start) and starts streaming. A checkpointed file the server
// has purged is an error wrapping ErrPositionGone that names the file. store
// may be nil (no checkpoints; every start uses cfg.Start); Close does not
// close it.
func New(ctx context.Context, cfg Config, store checkpoint.Store, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("source", "binlog")
	filter, err := newTableFilter(cfg.Include, cfg.Exclude)
	if err != nil {
		return nil, err
	}
	if cfg.ServerID == 0 {
		cfg.ServerID = 1<<28 + rand.Uint32N(1<<31-1<<28)
	}
	dsn := mysqlmeta.DSN(cfg.Addr, cfg.User, cfg.Password)
	if err := dsn.Apply(gomysql.Charset("utf8mb4", "")); err != nil {
		return nil, fmt.Errorf("mysql %s: %w", cfg.Addr, err)
	}
	dsn.Timeout, dsn.ReadTimeout = 10*time.Second, cfg.ReadTimeout
	tc, err := cfg.TLSClient()
	if err != nil {
		return nil, err
	}
	dsn.TLS = tc
	connector, err := gomysql.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql %s: %w", cfg.Addr, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(2)
	s := &Source{cfg: cfg, log: log, store: store, db: db, tls: tc, cat: mysqlmeta.NewCatalog(db), filter: filter,
		tables: map[string]*cdc.TableDef{}, plans: map[string]*plan{}}
	s.load = func(ctx context.Context, schema, table string) (*cdc.TableDef, error) {
		return loadTable(ctx, s.cat, schema, table)
	}
	if err := s.start(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Source) start(ctx context.Context) error {
	var version string
	if err := s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return fmt.Errorf("mysql %s: %w", s.cfg.Addr, err)
	}
	s.flavor = s.cfg.Flavor
	if s.flavor == "" {
		s.flavor = mysql.MySQLFlavor
		if strings.Contains(strings.ToLower(version), "mariadb") {
			s.flavor = mysql.MariaDBFlavor
		}
	}
	var pos checkpoint.Position
	from := "checkpoint"
	if s.store != nil {
		p, ok, err := s.store.Load(ctx)
		if err != nil {
			return fmt.Errorf("load checkpoint: %w", err)
		}
		if ok {
			pos = p
		}
	}
	if pos.IsZero() {
		from = "start"
		spec, err := parseStart(s.cfg.Start, s.flavor)
		if err != nil {
			return fmt.Errorf("start: %w", err)
		}
		switch {
		case spec.current:
			pos, err = s.currentPosition(ctx)
			from = "current"
		case spec.file != "":
			pos = checkpoint.Position{File: spec.file, Offset: spec.pos}
			pos.GTID = s.gtidAt(ctx, pos)
		default:
			pos = checkpoint.Position{GTID: spec.gtid}
		}
		if err != nil {
			return err
		}
	}
	if pos.File == "" && s.flavor == mysql.MySQLFlavor {
		// resuming by GTID set alone needs the server to assign GTIDs
		var mode sql.NullString
		if err := s.db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_mode").Scan(&mode); err != nil {
			return fmt.Errorf("mysql %s: read gtid_mode: %w", s.cfg.Addr, err)
		}
		if !strings.EqualFold(mode.String, "ON") {
			return fmt.Errorf("start at GTID set %s: the server has gtid_mode=%s (need ON; or start at FILE:POS)", pos.GTID, mode.String)
		}
	}
	if from != "checkpoint" && s.store != nil {
		// Pin the resolved start at once: otherwise a crash before the first
		// ack would resolve "current" again on restart and skip every change
		// written in between.
		if err := s.store.Save(ctx, pos); err != nil {
			return fmt.Errorf("save start position: %w", err)
		}
	}
	s.saver = checkpoint.NewSaver(s.store, s.cfg.CheckpointInterval, pos)
	s.log.Info("starting", "from", from, "pos", pos.String(), "flavor", s.flavor, "server_id", s.cfg.ServerID)
	return s.connect(ctx, pos)
}

// currentPosition is the server's binlog end now, with the GTID set there.
func (s *Source) currentPosition(ctx context.Context) (checkpoint.Position, error) {
	var p checkpoint.Position
	file, off, gtid, ok, err := mysqlmeta.BinlogStatus(ctx, s.db)
	if err != nil {
		return p, err
	}
	if !ok {
		return p, errors.New("binlog status: no binlog (is log_bin enabled?)")
	}
	p.File, p.Offset, p.GTID = file, off, gtid
	if s.flavor == mysql.MariaDBFlavor {
		p.GTID = s.gtidAt(ctx, p)
	}
	return p, nil
}

// gtidAt asks MariaDB for the GTID position at a file offset; "" elsewhere
// or when unknown.
func (s *Source) gtidAt(ctx context.Context, p checkpoint.Position) string {
	if s.flavor != mysql.MariaDBFlavor || p.File == "" {
		return ""
	}
	var g sql.NullString
	if err := s.db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", p.File, p.Offset).Scan(&g); err != nil {
		s.log.Debug("binlog_gtid_pos", "pos", p.String(), "err", errText(err))
		return ""
	}
	return g.String
}

// checkFile fails with ErrPositionGone when p's file is not on the server.
func (s *Source) checkFile(ctx context.Context, p checkpoint.Position) error {
	if p.File == "" {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return fmt.Errorf("list binlogs: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var names []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("list binlogs: %w", err)
		}
		names = append(names, vals[0].String)
		if vals[0].String == p.File {
			size, _ := strconv.ParseUint(vals[1].String, 10, 64)
			if len(cols) > 1 && p.Offset > size {
				return fmt.Errorf("resume from %s: offset %d is beyond the file's %d bytes: %w", p, p.Offset, size, ErrPositionGone)
			}
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list binlogs: %w", err)
	}
	oldest := "none"
	if len(names) > 0 {
		oldest = names[0]
	}
	return fmt.Errorf("resume from %s: binlog file %s is not on the server (purged? oldest is %s): %w",
		p, p.File, oldest, ErrPositionGone)
}

// connect starts a syncer at p (a transaction boundary).
func (s *Source) connect(ctx context.Context, p checkpoint.Position) error {
	if err := s.checkFile(ctx, p); err != nil {
		return err
	}
	host, port, _ := splitAddr(s.cfg.Addr)
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: s.cfg.ServerID, Flavor: s.flavor, Host: host, Port: port,
		User: s.cfg.User, Password: s.cfg.Password, Charset: "utf8mb4",
		// DATETIME/TIMESTAMP as time.Time (no format+parse round trip);
		// DECIMAL stays exact text; binary JSON as type-faithful text that
		// mysqlJSON prints in MySQL's form.
		ParseTime: true, TimestampStringLocation: time.UTC, UseDecimal: false, RenderJSONAsMySQLText: true,
		HeartbeatPeriod: s.cfg.Heartbeat, ReadTimeout: s.cfg.ReadTimeout,
		// the source reconnects itself, from the last transaction end, with
		// backoff and a fresh table-map cache
		DisableRetrySync: true, DiscardGTIDSet: true,
		EventCacheCount: s.cfg.ReadAhead, Logger: s.log, TLSConfig: s.tls,
		// row images are decoded by rows() with the table's plan (decode.go)
		RowsEventDecodeFunc: decodeRowsHeader,
		// the read deadline moves once per slack, not per event (deadline.go)
		Dialer: lazyDeadlineDialer(s.cfg.ReadTimeout / 16),
	})
	var (
		stream *replication.BinlogStreamer
		err    error
	)
	if p.File != "" {
		stream, err = syncer.StartSync(mysql.Position{Name: p.File, Pos: uint32(p.Offset)})
	} else {
		var gs mysql.GTIDSet
		gs, err = mysql.ParseGTIDSet(s.flavor, p.GTID)
		if err == nil {
			stream, err = syncer.StartSyncGTID(gs)
		}
	}
	if err != nil {
		syncer.Close()
		return fmt.Errorf("start binlog stream at %s: %w", p, err)
	}
	s.gset = nil
	if p.GTID != "" {
		if gs, err := mysql.ParseGTIDSet(s.flavor, p.GTID); err == nil {
			s.gset = gs
		} else {
			s.log.Warn("ignoring unparsable gtid set", "gtid", p.GTID, "err", errText(err))
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		syncer.Close()
		return ErrClosed
	}
	s.syncer, s.stream = syncer, stream
	s.mu.Unlock()
	s.file, s.inTx, s.pendingGTID, s.pendingMaria = p.File, false, "", mysql.MariadbGTID{}
	s.txStarted = time.Time{}
	clear(s.backlog)
	s.backlog, s.backlogAt = s.backlog[:0], 0
	s.txEnd = checkpoint.Position{File: p.File, Offset: p.Offset}
	return nil
}

// resumePos is the position after the last complete transaction read.
func (s *Source) resumePos() checkpoint.Position {
	p := s.txEnd
	if s.gset != nil {
		p.GTID = s.gset.String()
	}
	return p
}

// reconnect closes the broken stream and starts again from the last
// transaction end, backing off with jitter until it works or ctx ends.
// Events of the unfinished transaction are dropped from the pending batch:
// they are read again.
func (s *Source) reconnect(ctx context.Context, cause error) error {
	s.mu.Lock()
	if s.syncer != nil {
		s.syncer.Close()
		s.syncer, s.stream = nil, nil
	}
	s.mu.Unlock()
	s.cur, s.curRejects = s.cur[:s.curTxIdx], s.curRejects[:s.curTxRej]
	s.txStarted = time.Time{}
	clear(s.backlog) // read again from pos
	s.backlog, s.backlogAt = s.backlog[:0], 0
	clear(s.plans)
	s.jsonPrev.reset()
	pos := s.resumePos()
	retry := backoff.Policy{Min: defaultBackoffStart, Max: s.cfg.BackoffMax}
	for attempt := 1; ; attempt++ {
		wait := retry.Delay(attempt)
		s.log.Warn("binlog stream broken; reconnecting", "err", errText(cause), "pos", pos.String(), "attempt", attempt, "in", wait)
		if !backoff.Sleep(ctx, wait) {
			return ctx.Err()
		}
		err := s.connect(ctx, pos)
		if err == nil {
			s.reconnects.Inc()
			s.log.Info("binlog stream resumed", "pos", pos.String())
			return nil
		}
		if errors.Is(err, ErrPositionGone) || errors.Is(err, ErrClosed) {
			return err
		}
		cause = err
	}
}

// Next returns the next batch: up to BatchSize events. A batch holding
// events closes as soon as nothing more has been received and it ends at a
// transaction boundary (or its open transaction has been read for MaxWait
// already), and at the latest MaxWait after its first event. A batch with
// no events but a moved checkpoint is returned after IdleAck. Events
// gathered when ctx ends are kept for the next call.
func (s *Source) Next(ctx context.Context) (cdc.Batch, error) {
	if err := s.nackErr(); err != nil {
		return cdc.Batch{}, err
	}
	w := waiter{ctx: ctx}
	defer w.stop()
	for len(s.cur) < s.cfg.BatchSize {
		s.mu.Lock()
		closed, stream := s.closed, s.stream
		s.mu.Unlock()
		if closed {
			return cdc.Batch{}, ErrClosed
		}
		if stream == nil {
			if err := s.reconnect(ctx, errors.New("no stream")); err != nil {
				return cdc.Batch{}, err
			}
			continue
		}
		ev := s.received()
		if ev == nil && s.complete() {
			// The batch could go now; take whatever the syncer has
			// received already, and close the batch if that is nothing.
			if s.backlog = stream.DumpEvents(); len(s.backlog) == 0 {
				s.caughtUp.Store(true)
				break
			}
			s.backlogAt = 0
			continue
		}
		if ev == nil {
			var err error
			ev, err = stream.GetEvent(w.ctx)
			if err != nil {
				if ctx.Err() != nil {
					return cdc.Batch{}, ctx.Err()
				}
				if w.expired() {
					s.caughtUp.Store(true)
					break // max wait reached
				}
				if err := s.streamError(ctx, err); err != nil {
					return cdc.Batch{}, err
				}
				continue
			}
		}
		if err := s.handle(ctx, ev); err != nil {
			if ctx.Err() != nil {
				return cdc.Batch{}, ctx.Err()
			}
			if errors.Is(err, ErrUnsupported) {
				return cdc.Batch{}, err
			}
			if err := s.streamError(ctx, err); err != nil {
				return cdc.Batch{}, err
			}
			continue
		}
		// close the batch MaxWait after its first event at the latest, or
		// IdleAck after a checkpoint move that carried no event
		switch {
		case w.mode < waitEvents && (len(s.cur) > 0 || len(s.curRejects) > 0):
			w.until(ctx, time.Now().Add(s.cfg.MaxWait))
			w.mode = waitEvents
		case w.mode < waitIdle && (s.txEndSeq != s.returnedSeq || s.readSeq != s.returnedRead):
			w.until(ctx, time.Now().Add(s.cfg.IdleAck))
			w.mode = waitIdle
		}
	}
	return s.cut(), nil
}

// received pops the next event already taken from the stream, or nil.
func (s *Source) received() *replication.BinlogEvent {
	if s.backlogAt >= len(s.backlog) {
		return nil
	}
	ev := s.backlog[s.backlogAt]
	s.backlog[s.backlogAt] = nil
	s.backlogAt++
	return ev
}

// complete reports whether the pending batch may close before MaxWait:
// it holds events (or rejects) and either ends at a transaction end or its
// open transaction has been read for MaxWait already (a long transaction
// streams in batches rather than stalling each one for MaxWait).
func (s *Source) complete() bool {
	if len(s.cur) == 0 && len(s.curRejects) == 0 {
		return false
	}
	if len(s.cur) == s.curTxIdx && len(s.curRejects) == s.curTxRej {
		return true
	}
	return !s.txStarted.IsZero() && time.Since(s.txStarted) >= s.cfg.MaxWait
}

// waiter is the context one GetEvent waits under: the caller's, or the
// caller's with the batch deadline.
type waiter struct {
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
	mode     int // waitNone, waitIdle or waitEvents: which deadline is set
}

const (
	waitNone = iota
	waitIdle
	waitEvents
)

// until moves the deadline earlier to t (never later).
func (w *waiter) until(parent context.Context, t time.Time) {
	if !w.deadline.IsZero() && !t.Before(w.deadline) {
		return
	}
	w.stop()
	w.deadline = t
	w.ctx, w.cancel = context.WithDeadline(parent, t)
}

func (w *waiter) expired() bool { return w.cancel != nil && w.ctx.Err() != nil }

func (w *waiter) stop() {
	if w.cancel != nil {
		w.cancel()
	}
}

// streamError decides between reconnecting and giving up.
func (s *Source) streamError(ctx context.Context, err error) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var me *mysql.MyError
	if errors.As(err, &me) && me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG ||
		strings.Contains(err.Error(), "ERROR 1236") {
		return fmt.Errorf("read binlog at %s: %v: %w", s.resumePos(), err, ErrPositionGone)
	}
	return s.reconnect(ctx, err)
}

// cut turns the pending events into a batch whose checkpoint is the last
// transaction end read so far: never a position inside a transaction,
// because a transaction spans several row events.
func (s *Source) cut() cdc.Batch {
	events, rejects := s.cur, s.curRejects
	s.cur, s.curRejects = nil, nil
	rows := s.curRows
	s.curRows = nil
	if len(events) > s.cfg.BatchSize && s.curTxIdx <= s.cfg.BatchSize {
		// the last rows event overflowed the batch; no transaction ends
		// inside a rows event, so the last tx end lies before the split.
		// A compressed transaction is one event that may end past
		// BatchSize: it goes whole, so its checkpoint never covers rows
		// left for the next batch.
		s.cur = append(s.eventList(s.cfg.BatchSize+s.cfg.BatchSize/16), events[s.cfg.BatchSize:]...)
		events = events[:s.cfg.BatchSize:s.cfg.BatchSize]
		// The rows of both parts go back with the next batch: acks come
		// in order, so this one is acked by then.
		s.curRows, rows = rows, nil
	}
	// Through: every change up to the last tx end is in this batch or an
	// earlier one (the rows past a split come after it); with nothing left
	// over and no transaction open, everything read so far.
	through := cdc.BinlogPosVersion(s.txEnd.File, s.txEnd.Offset)
	if len(s.cur) == 0 && !s.inTx {
		through = max(through, s.readVer)
		s.returnedRead = s.readSeq
	}
	s.curTxIdx, s.curTxRej = 0, 0
	s.lastLen = len(events)
	var cp checkpoint.Position
	seq := s.txEndSeq
	if s.txEndSeq != s.returnedSeq {
		cp = s.resumePos()
		s.returnedSeq = s.txEndSeq
	}
	var once atomic.Bool
	return cdc.Batch{Events: events, Rejects: rejects, Through: through, Ack: func(ctx context.Context, err error) error {
		if !once.CompareAndSwap(false, true) {
			return errors.New("binlog batch acked twice")
		}
		if err != nil {
			s.nack(err) // its rows are left to the collector: see cdc.RowPool
			return nil
		}
		if s.nackErr() == nil {
			rows.Recycle()
			s.freeEventList(events)
		}
		if cp.IsZero() {
			return nil
		}
		return s.ack(cp, seq)
	}}
}

// maxFreeEvents bounds the event lists kept for reuse: enough for the
// batches acked between two Nexts.
const maxFreeEvents = 4

// eventList returns an empty event list with room for n events: the list
// of an acked batch when one has the room, else a new one. A batch's list
// is half a MiB at 4096 events; made anew for every batch and grown by
// append (by a quarter at a time past 256 events, each step a copy) it
// was ~6% of the binlog drain's CPU.
func (s *Source) eventList(n int) []cdc.Event {
	s.freeMu.Lock()
	defer s.freeMu.Unlock()
	if k := len(s.freeEvents); k > 0 && cap(s.freeEvents[k-1]) >= n {
		l := s.freeEvents[k-1]
		s.freeEvents[k-1] = nil
		s.freeEvents = s.freeEvents[:k-1]
		return l
	}
	return make([]cdc.Event, 0, n)
}

// freeEventList keeps the list of an acked batch (see cdc.Batch: nothing
// holds it now) for eventList. It is not cleared: every event is
// overwritten before it is read again, and what the stale ones keep
// reachable (pooled rows, plans' columns, position texts) is bounded by
// the lists kept. Lists past a full batch (a compressed transaction taken
// whole) are left to the collector.
func (s *Source) freeEventList(l []cdc.Event) {
	if cap(l) == 0 || cap(l) > s.cfg.BatchSize+s.cfg.BatchSize/16 {
		return
	}
	s.freeMu.Lock()
	if len(s.freeEvents) < maxFreeEvents {
		s.freeEvents = append(s.freeEvents, l[:0])
	}
	s.freeMu.Unlock()
}

// growEvents makes room in cur for more events when it is full: the
// batch outgrew the size the last one suggested. The room doubles, up to
// a full batch (BatchSize and the 1/16 headroom of cut) in one step.
func (s *Source) growEvents() {
	limit := s.cfg.BatchSize + s.cfg.BatchSize/16
	n := max(2*cap(s.cur), 16)
	if cap(s.cur) < limit {
		n = min(n, limit)
	}
	s.cur = append(s.eventList(n), s.cur...)
}

// batchRows is where cur's events take their rows from.
func (s *Source) batchRows() *cdc.BatchRows {
	if s.curRows == nil {
		s.curRows = s.rowPool.Rows()
	}
	return s.curRows
}

// nack honours cdc.Batch's contract for a batch that was not applied: the
// checkpoint stays where it is (later acks are ignored, so it never moves
// past the batch) and Next fails, so a restart reads the batch again from
// the last saved position.
func (s *Source) nack(err error) {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	if s.nacked == nil {
		s.nacked = fmt.Errorf("binlog source: batch nacked, restart to read again from the checkpoint: %w", err)
	}
}

func (s *Source) nackErr() error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	return s.nacked
}

// ack hands an acked batch's checkpoint to the saver, which writes it in
// the background: Ack never waits for the store. A checkpoint older than
// one acked before is ignored, so the store never moves back.
func (s *Source) ack(cp checkpoint.Position, seq uint64) error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	if seq <= s.ackSeq || s.nacked != nil {
		return nil
	}
	s.ackSeq = seq
	if err := s.saver.Err(); err != nil && time.Since(s.saveWarned) > 10*time.Second {
		// The saver retries; the stream goes on (a crash now only replays more).
		s.log.Warn("checkpoint save failing, retrying", "err", err)
		s.saveWarned = time.Now()
	}
	return s.saver.Ack(cp)
}

// StreamServerID returns the @@server_id of the server whose binlog the
// source reads (not the replica id rowsync registers with), so a reader
// of rows can check that it reads the same server.
func (s *Source) StreamServerID(ctx context.Context) (uint64, error) {
	var id uint64
	if err := s.db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil {
		return 0, fmt.Errorf("mysql %s: server_id: %w", s.cfg.Addr, err)
	}
	return id, nil
}

// Flush writes the newest acked checkpoint to the store now and returns
// once it is there, or the first save error.
func (s *Source) Flush(ctx context.Context) error {
	return s.saver.Flush(ctx)
}

// Checkpoint returns the newest position written to the store (or the
// start position before any). Acked positions reach the store within
// CheckpointInterval; Flush forces them.
func (s *Source) Checkpoint() checkpoint.Position {
	return s.saver.Saved()
}

var _ metrics.Instrumented = (*Source)(nil)

// Instrument registers rowsync_binlog_reconnects_total and the checkpoint
// saver's rowsync_checkpoint_save_failures_total on m. Call it before the
// first Next.
func (s *Source) Instrument(m *metrics.Metrics) {
	s.reconnects = m.Counter("rowsync_binlog_reconnects_total", "Binlog streams re-established after an error.", nil)
	s.saver.Instrument(m)
}

// Lag is how far the source trails the server: now minus the commit time
// of the last event read, 0 when caught up. For rowsync_source_lag_seconds.
func (s *Source) Lag() time.Duration {
	ts := s.lastCommit.Load()
	if s.caughtUp.Load() || ts == 0 {
		return 0
	}
	return max(0, time.Since(time.Unix(ts, 0)))
}

// Close stops the stream and the connections and writes the newest acked
// checkpoint (waiting for a save in flight); it acks nothing and leaves
// the checkpoint store open.
func (s *Source) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	syncer := s.syncer
	s.syncer, s.stream = nil, nil
	s.mu.Unlock()
	if syncer != nil {
		syncer.Close()
	}
	return errors.Join(s.saver.Close(ctx), s.db.Close())
}

// handle applies one binlog event to the stream state and the pending batch.
func (s *Source) handle(ctx context.Context, ev *replication.BinlogEvent) error {
	h := ev.Header
	if err := s.handleAt(ctx, ev, h, uint64(h.LogPos)-uint64(h.EventSize)); err != nil {
		return err
	}
	s.readTo(ev)
	return nil
}

// readTo moves readVer past ev when no transaction is open and every
// pending event ends at a transaction end, so a batch's Through can reach
// the server's binlog end (a backfill's watermark) even when the last
// events there end no transaction. Heartbeats carry no position of ours.
func (s *Source) readTo(ev *replication.BinlogEvent) {
	if s.inTx || len(s.cur) != s.curTxIdx || len(s.curRejects) != s.curTxRej {
		return
	}
	var v uint64
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		v = cdc.BinlogPosVersion(string(e.NextLogName), e.Position)
	default:
		switch ev.Header.EventType {
		case replication.HEARTBEAT_EVENT, replication.HEARTBEAT_LOG_EVENT_V2:
			return
		}
		if ev.Header.LogPos == 0 {
			return
		}
		v = cdc.BinlogPosVersion(s.file, uint64(ev.Header.LogPos))
	}
	if v > s.readVer {
		s.readVer = v
		s.readSeq++
	}
}

// handleAt handles ev, which ends a transaction at outer.LogPos (ev's own
// header, or the TRANSACTION_PAYLOAD_EVENT holding it) and whose rows are
// at offset of the current file.
func (s *Source) handleAt(ctx context.Context, ev *replication.BinlogEvent, outer *replication.EventHeader, offset uint64) error {
	h := ev.Header
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
		// a real rotate (not the fake one at stream start, LogPos 0) ends
		// a file; its successor's start is a transaction boundary
		if h.LogPos != 0 && !s.inTx {
			s.endTx(e.Position, false)
		}
		return nil
	case *replication.MariadbGTIDEvent:
		s.pendingGTID, s.pendingMaria = "", e.GTID
		s.inTx = !e.IsStandalone()
		return nil
	case *replication.GTIDEvent:
		s.pendingGTID, s.pendingMaria = "", mysql.MariadbGTID{}
		if h.EventType != replication.ANONYMOUS_GTID_EVENT {
			s.pendingGTID = mysqlGTID(e)
		}
		return nil
	case *replication.GtidTaggedLogEvent: // 8.3+: uuid:tag:gno
		s.pendingGTID, s.pendingMaria = mysqlGTID(&e.GTIDEvent), mysql.MariadbGTID{}
		return nil
	case *replication.QueryEvent:
		return s.query(outer, e)
	case *replication.XIDEvent:
		s.endTx(uint64(outer.LogPos), true)
		return nil
	case *replication.RowsEvent:
		s.lastCommit.Store(int64(h.Timestamp))
		s.caughtUp.Store(false)
		return s.rows(ctx, ev, e, offset)
	case *replication.TransactionPayloadEvent:
		return s.payload(ctx, h, e)
	case *replication.ExecuteLoadQueryEvent:
		// LOAD DATA logged as a statement (binlog_format STATEMENT/MIXED)
		return s.statement(h, "", "LOAD DATA")
	case *replication.GenericEvent:
		return s.generic(h)
	}
	switch h.EventType {
	case replication.HEARTBEAT_EVENT, replication.HEARTBEAT_LOG_EVENT_V2:
		s.caughtUp.Store(true)
	}
	return nil
}

// payload handles a compressed transaction (binlog_transaction_compression,
// MySQL 8.0.20+): each inner event as if it came alone. Inner events carry
// no position of their own; the transaction ends where the payload event
// ends, and the rows of inner event i are placed at the payload's offset
// plus i, so they keep their order (sinks compare positions per key) and
// stay below the next transaction's.
func (s *Source) payload(ctx context.Context, h *replication.EventHeader, e *replication.TransactionPayloadEvent) error {
	start := uint64(h.LogPos) - uint64(h.EventSize)
	for i, in := range e.Events {
		if _, ok := in.Event.(*replication.TransactionPayloadEvent); ok {
			return fmt.Errorf("%s at %s:%d: a payload inside a payload: %w", h.EventType, s.file, start, ErrUnsupported)
		}
		if err := s.handleAt(ctx, in, h, start+uint64(min(i, int(h.EventSize)-1))); err != nil {
			return err
		}
	}
	return nil
}

// logEventIgnorable is the header flag of events a replica may skip
// (LOG_EVENT_IGNORABLE_F): they never carry changes.
const logEventIgnorable = 0x80

// generic handles the events go-mysql does not decode. Those known to
// carry no row change pass; any other (an incident, the old LOAD DATA
// events, a type newer than this code) stops the stream: it might hold
// changes that would otherwise be lost without a trace.
func (s *Source) generic(h *replication.EventHeader) error {
	switch h.EventType {
	case replication.XA_PREPARE_LOG_EVENT:
		// the first phase of an XA transaction ends here; its commit
		// comes later as a QUERY "XA COMMIT"
		s.endTx(uint64(h.LogPos), true)
		return nil
	case replication.START_EVENT_V3, replication.STOP_EVENT, replication.SLAVE_EVENT,
		replication.IGNORABLE_EVENT, replication.RAND_EVENT, replication.USER_VAR_EVENT,
		replication.TRANSACTION_CONTEXT_EVENT, replication.VIEW_CHANGE_EVENT:
		return nil
	}
	if h.Flags&logEventIgnorable != 0 {
		return nil
	}
	return fmt.Errorf("binlog event %s (type %d) at %s:%d: rowsync cannot read it and it may carry row changes: %w",
		h.EventType, byte(h.EventType), s.file, uint64(h.LogPos)-uint64(h.EventSize), ErrUnsupported)
}

func (s *Source) query(h *replication.EventHeader, e *replication.QueryEvent) error {
	q := stripComments(e.Query)
	if verb := dmlVerb(q); verb != "" {
		if err := s.statement(h, string(e.Schema), q); err != nil {
			return err
		}
	}
	switch {
	case hasPrefixFold(q, "BEGIN"), hasPrefixFold(q, "XA START"), hasPrefixFold(q, "XA BEGIN"):
		s.inTx = true
	case hasPrefixFold(q, "COMMIT"), hasPrefixFold(q, "ROLLBACK"), hasPrefixFold(q, "XA COMMIT"), hasPrefixFold(q, "XA ROLLBACK"):
		s.endTx(uint64(h.LogPos), true)
	case isDDL(q):
		// a DDL commits implicitly; table definitions may have changed
		s.invalidateSchema()
		s.reportDDL(h, string(e.Schema), q)
		s.endTx(uint64(h.LogPos), true)
	case !s.inTx:
		s.endTx(uint64(h.LogPos), true)
	}
	return nil
}

// endTx records a transaction boundary at offset of the current file.
func (s *Source) endTx(offset uint64, gtid bool) {
	s.inTx = false
	if gtid && s.gset != nil {
		var err error
		maria, isMaria := s.gset.(*mysql.MariadbGTIDSet)
		switch {
		case s.pendingMaria != (mysql.MariadbGTID{}) && isMaria:
			err = maria.AddSet(&s.pendingMaria) // what Update does with the text
		case s.pendingMaria != (mysql.MariadbGTID{}):
			err = s.gset.Update(s.pendingMaria.String())
		case s.pendingGTID != "":
			err = s.gset.Update(s.pendingGTID)
		}
		if err != nil {
			s.log.Warn("gtid set update", "gtid", s.pendingGTID+s.pendingMaria.String(), "err", errText(err))
		}
	}
	s.pendingGTID, s.pendingMaria = "", mysql.MariadbGTID{}
	s.txStarted = time.Time{}
	s.txEnd = checkpoint.Position{File: s.file, Offset: offset}
	s.txEndSeq++
	s.curTxIdx, s.curTxRej = len(s.cur), len(s.curRejects)
}

func (s *Source) invalidateSchema() {
	s.jsonPrev.reset()
	s.schemaGen++
	clear(s.tables)
	clear(s.plans)
}

// planFor returns the decode plan of a table map, building it (and
// reading information_schema) when the table's shape or schema changed.
func (s *Source) planFor(ctx context.Context, key string, tm *replication.TableMapEvent) (*plan, error) {
	if p := s.plans[key]; p != nil && p.matches(tm, s.schemaGen) {
		return p, nil
	}
	db, table := string(tm.Schema), string(tm.Table)
	ti := s.tables[key]
	fresh := false
	if ti == nil {
		var err error
		if ti, err = s.load(ctx, db, table); err != nil {
			return nil, err
		}
		s.tables[key], fresh = ti, true
	}
	if !fresh && len(tm.ColumnName) == 0 && len(ti.Columns) != int(tm.ColumnCount) {
		// no names in the event and the column count moved: a DDL we did
		// not see as such; read the definition again
		var err error
		if ti, err = s.load(ctx, db, table); err != nil {
			return nil, err
		}
		s.tables[key] = ti
	}
	p := buildPlan(tm, ti, s.schemaGen, s.log)
	p.key, p.db, p.table = key, db, table
	s.plans[key] = p
	return p, nil
}

// errText is err's message alone: go-mysql's errors print a stack trace
// under %+v, which slog's text handler uses.
func errText(err error) string { return err.Error() }

// mysqlGTID is a MySQL GTID event's "uuid:gno", or "uuid:tag:gno" when
// the transaction is tagged (8.3+).
func mysqlGTID(e *replication.GTIDEvent) string {
	g := formatSID(e.SID)
	if tag := e.Tag.String(); tag != "" {
		g += ":" + tag
	}
	return g + ":" + strconv.FormatInt(e.GNO, 10)
}

func formatSID(sid []byte) string {
	if len(sid) != 16 {
		return hex.EncodeToString(sid)
	}
	h := hex.EncodeToString(sid)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// stripComments drops leading whitespace and /* */ comments of a query.
func stripComments(b []byte) string { return cdc.StripComments(string(b)) }

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) &&
		(len(s) == len(prefix) || s[len(prefix)] == ' ' || s[len(prefix)] == '\t' || s[len(prefix)] == '\n' || s[len(prefix)] == ';')
}

// reportDDL hands a schema change to Config.OnDDL, with the tables it
// names where the statement's shape says so.
func (s *Source) reportDDL(h *replication.EventHeader, schema, q string) {
	if s.cfg.OnDDL == nil {
		return
	}
	d := ddlTarget(q, schema)
	d.SQL = q
	d.Commit = time.Unix(int64(h.Timestamp), 0).UTC()
	offset := uint64(h.LogPos) - uint64(h.EventSize)
	d.Pos = cdc.Position{Version: cdc.BinlogPosVersion(s.file, offset), Text: s.file + ":" + strconv.FormatUint(offset, 10)}
	s.cfg.OnDDL(d)
}

// ddlTarget parses the verb and the tables of a DDL statement: TRUNCATE
// [TABLE] t, DROP TABLE [IF EXISTS] a, b, DROP DATABASE|SCHEMA [IF
// EXISTS] d, ALTER TABLE t, RENAME TABLE a TO b[, c TO d], CREATE TABLE t.
// Names without a schema are in schema (the statement's default
// database). Other statements give only DB and Type.
func ddlTarget(q, schema string) cdc.DDL {
	for { // the server appends "/* generated by server */" to a DROP TABLE
		i := strings.Index(q, "/*")
		j := strings.Index(q[max(i, 0):], "*/")
		if i < 0 || j < 0 {
			break
		}
		q = q[:i] + " " + q[i+j+2:]
	}
	f := strings.Fields(strings.TrimRight(q, "; \t\r\n"))
	d := cdc.DDL{DB: schema}
	if len(f) == 0 {
		return d
	}
	d.Type = strings.ToUpper(f[0])
	f = f[1:]
	word := func(w ...string) bool {
		if len(f) > 0 && slices.Contains(w, strings.ToUpper(f[0])) {
			f = f[1:]
			return true
		}
		return false
	}
	ifExists := func() {
		if len(f) >= 2 && strings.EqualFold(f[0], "IF") && strings.EqualFold(f[1], "EXISTS") {
			f = f[2:]
		}
	}
	var names []string
	switch d.Type {
	case "TRUNCATE":
		word("TABLE")
		names = f[:min(1, len(f))]
	case "DROP":
		word("TEMPORARY")
		switch {
		case word("TABLE", "TABLES"):
			ifExists()
			names = f
		case word("DATABASE", "SCHEMA"):
			ifExists()
			if len(f) > 0 {
				d.DB = unquoteName(f[0])
			}
			return d
		default:
			return d
		}
	case "ALTER", "CREATE":
		word("ONLINE", "IGNORE", "OR", "REPLACE", "TEMPORARY")
		if !word("TABLE") {
			return d
		}
		if len(f) >= 3 && strings.EqualFold(f[0], "IF") && strings.EqualFold(f[1], "NOT") && strings.EqualFold(f[2], "EXISTS") {
			f = f[3:]
		}
		ifExists()
		names = f[:min(1, len(f))]
	case "RENAME":
		if !word("TABLE", "TABLES") {
			return d
		}
		names = f // a TO b, c TO d: both sides change
	default:
		return d
	}
	var tables []string
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			if part == "" || strings.EqualFold(part, "TO") {
				continue
			}
			if i := strings.IndexAny(part, "( "); i >= 0 {
				part = part[:i]
			}
			db, table := splitName(part, schema)
			if table == "" {
				continue
			}
			if len(tables) == 0 {
				d.DB = db
			}
			if db != d.DB {
				table = db + "." + table // another schema: keep it qualified
			}
			tables = append(tables, table)
		}
	}
	d.Table = strings.Join(tables, ",")
	return d
}

// splitName splits `db`.`t`, db.t or t (in schema) into its parts.
func splitName(n, schema string) (db, table string) {
	if i := strings.Index(n, "`.`"); i >= 0 {
		return unquoteName(n[:i+1]), unquoteName(n[i+2:])
	}
	if !strings.HasPrefix(n, "`") {
		if i := strings.IndexByte(n, '.'); i >= 0 {
			return unquoteName(n[:i]), unquoteName(n[i+1:])
		}
	}
	return schema, unquoteName(n)
}

func unquoteName(n string) string {
	n = strings.TrimRight(n, ",;")
	if len(n) >= 2 && n[0] == '`' && n[len(n)-1] == '`' {
		return strings.ReplaceAll(n[1:len(n)-1], "``", "`")
	}
	return n
}

// isDDL spots statements that may change a table definition.
func isDDL(q string) bool {
	for _, kw := range []string{"ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE"} {
		if hasPrefixFold(q, kw) {
			return true
		}
	}
	return false
}
