// Package kafka is rowsync's Kafka source: a consumer-group member that
// fetches the partitions assigned to it, decodes their messages into
// cdc.Events and commits, per partition, only the offset below which every
// message handed out has been acked (applied or dead-lettered).
//
// Delivery is at-least-once. Within a partition, events are handed out in
// offset order. A message may be delivered again after a crash (everything
// past the last committed watermark is re-read), after a nack, or when a
// rebalance takes partitions away while their batches are still unacked
// for longer than revoke_timeout; rowsync's sinks are idempotent, so a
// replay changes nothing. Exactly-once here means "the end state is exact",
// not "each message is applied once".
//
// The source uses kafka-go's ConsumerGroup/Generation API rather than a
// Reader with a GroupID: a generation gives the exact partitions owned and
// commits tied to that generation, so the source can stop handing out a
// revoked partition's buffered messages, wait for its in-flight batches,
// commit their watermark and only then let the group rebalance.
package kafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/semaphore"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/backoff"
	"github.com/rowsync/rowsync/internal/batch"
	"github.com/rowsync/rowsync/internal/kafkaauth"
	"github.com/rowsync/rowsync/metrics"
	"github.com/rowsync/rowsync/source/decode"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("kafka source closed")

// Retry delays: a partition's fetcher reconnecting, and listing topics
// until some match topic_regex.
var (
	fetchRetry  = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	topicsRetry = backoff.Policy{Min: time.Second, Max: 30 * time.Second}
)

// minChunk is the fewest events a chunk is sized for when read_ahead is
// shared by many partitions, so that chunks stay worth a channel send.
const minChunk = 64

// chunkQueue is how many decoded chunks may wait between the fetchers and
// Next; their messages are bounded by read_ahead (Source.ahead). As many
// chunks Next has copied out wait in Source.free to be filled again.
const chunkQueue = 8

// spareBatches is how many acked batches' event slices wait in
// Source.spare for Next: acks and Nexts alternate, so a few suffice, and
// each holds batch_size events' worth of memory.
const spareBatches = 2

// Source consumes Kafka topics as a consumer-group member. Next is meant
// for one goroutine; Ack functions and Close may be called from any.
type Source struct {
	cfg     Config
	dec     decode.Decoder
	log     *slog.Logger
	dialer  *kafka.Dialer
	topicRE *regexp.Regexp

	chunks chan *chunk
	// free holds chunks whose events Next copied into a batch, cleared,
	// for the fetchers to fill again instead of allocating their events
	// (8% of a canal-json drain's allocated bytes).
	free chan *chunk
	// spare holds the event slices of acked batches that Next merged from
	// several chunks, cleared, for Next to merge into again (a batch's
	// slice was 8% of a canal-json drain's allocated bytes, a chunk's
	// another 5%: a chunk handed out whole returns to free at its ack).
	spare chan []cdc.Event
	// ahead holds a unit per message decoded and not yet taken by Next
	// (read_ahead): fetchers acquire, Next releases.
	ahead *semaphore.Weighted

	ctx      context.Context // ends at Close
	cancel   context.CancelFunc
	runDone  chan struct{}
	closeNow chan struct{} // closed by Close: stop waiting for acks
	genWG    sync.WaitGroup

	startOnce sync.Once
	mu        sync.Mutex
	started   bool
	closed    bool
	group     *kafka.ConsumerGroup
	parts     []*partState // current generation's partitions

	failOnce sync.Once
	failed   chan struct{}
	failErr  error

	// dead stops all commits; tests set it to act out a crash.
	dead atomic.Bool

	met       sourceMetrics
	revokedAt atomic.Int64 // unix nanos when the last generation ended, 0 before

	// rowPool holds the rows of acked batches for the decoder
	// (decode.Message.Rows); each chunk takes its own.
	rowPool cdc.RowPool

	// Next's own state.
	held  *chunk
	win   *batch.Window // batch_size or max_wait
	taken []*chunk      // reused by Next
}

var _ cdc.Source = (*Source)(nil)

// chunk is up to batch_size consecutive messages of one partition,
// decoded by the partition's fetcher.
type chunk struct {
	part    *partState
	end     int64 // offset of the last message + 1
	n       int   // messages
	room    int   // events the chunk is sized for: handed over when reached
	events  []cdc.Event
	rejects []cdc.Reject
	// rows are the events' rows (nil until the first), the
	// batch's once Next takes the chunk, recycled when it is acked.
	rows *cdc.BatchRows
}

// genState is one consumer-group generation as this member sees it.
type genState struct {
	gen      *kafka.Generation
	parts    []*partState
	acked    chan struct{} // poked (never blocking) when an ack lands
	fetchers sync.WaitGroup
}

// partState is one assigned partition within one generation. A partition
// assigned again in a later generation gets a new partState, so acks of
// batches from an old generation never feed a newer generation's commits.
type partState struct {
	topic     string
	partition int
	gen       *genState

	mu        sync.Mutex
	revoked   bool // generation over: hand nothing more out
	started   bool // start offset resolved, wm valid
	wm        watermark
	committed int64 // last committed offset, -1 if the group has none

	hwm      atomic.Int64 // partition high watermark at the last fetch
	pos      atomic.Int64 // next offset to fetch
	lastTime atomic.Int64 // unix nanos of the last fetched message's timestamp
}

type ackRef struct {
	part   *partState
	ticket uint64
}

// sourceMetrics are the source's own counters; nil (no-op) unless
// Instrument was called.
type sourceMetrics struct {
	rebalances     *metrics.Counter // generations joined after the first
	rebalanceTime  *metrics.Gauge   // seconds from giving partitions up to the next assignment
	reconnects     *metrics.Counter // partition fetchers that reconnected
	commitFailures *metrics.Counter
}

// Instrument registers the source's metrics on m, labelled with its group:
// rowsync_kafka_rebalances_total, rowsync_kafka_rebalance_seconds (the last
// one), rowsync_kafka_fetch_reconnects_total and
// rowsync_kafka_commit_failures_total. Call it before the first Next.
func (s *Source) Instrument(m *metrics.Metrics) {
	l := prometheus.Labels{"group": s.cfg.Group}
	s.met = sourceMetrics{
		rebalances:     m.Counter("rowsync_kafka_rebalances_total", "Consumer-group generations joined after the first (rebalances).", l),
		rebalanceTime:  m.Gauge("rowsync_kafka_rebalance_seconds", "Time the last rebalance took: from giving partitions up to the next assignment.", l),
		reconnects:     m.Counter("rowsync_kafka_fetch_reconnects_total", "Partition fetch connections re-established after an error.", l),
		commitFailures: m.Counter("rowsync_kafka_commit_failures_total", "Offset commits the coordinator refused or that failed.", l),
	}
}

var _ metrics.Instrumented = (*Source)(nil)

// New returns a Kafka source that decodes messages with dec. It does not
// connect: the group is joined at the first Next.
func New(cfg Config, dec decode.Decoder, logger *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dec == nil {
		return nil, errors.New("kafka source: nil decoder")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	dialer, err := Dialer(cfg)
	if err != nil {
		return nil, err
	}
	s := &Source{
		cfg:      cfg,
		dec:      decode.Guard(dec),
		log:      logger.With("source", "kafka"),
		dialer:   dialer,
		chunks:   make(chan *chunk, chunkQueue),
		free:     make(chan *chunk, chunkQueue),
		spare:    make(chan []cdc.Event, spareBatches),
		ahead:    semaphore.NewWeighted(int64(cfg.ReadAhead)),
		runDone:  make(chan struct{}),
		closeNow: make(chan struct{}),
		failed:   make(chan struct{}),
		win:      batch.NewWindow(cfg.BatchSize, cfg.MaxWait),
	}
	if cfg.TopicRegex != "" {
		s.topicRE, _ = compileTopicRegex(cfg.TopicRegex) // checked by Validate
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Next returns the next batch: the decoded events of up to batch_size
// messages, possibly from several partitions, each partition's in offset
// order, plus the messages that failed to decode as Rejects. It waits for
// the first message until ctx ends, then up to max_wait to fill the batch.
// The batch's Ack(nil) marks its messages done; their offsets are committed
// once every earlier message of the same partition is done too, and the
// batch's memory (its events slice and rows) is reused for later
// batches (cdc.Batch). Ack with an error stops the source: the next Next
// returns an error and a restart re-reads from the committed offsets.
func (s *Source) Next(ctx context.Context) (cdc.Batch, error) {
	s.startOnce.Do(s.start)
	if err := s.failure(); err != nil {
		return cdc.Batch{}, err
	}
	var (
		refs    []ackRef
		rows    []*cdc.BatchRows
		rejects []cdc.Reject
		taken   = s.taken[:0] // the events of the chunks taken
		total   int
		win     = s.win
	)
	defer win.Reset()
fill:
	for !win.Full() {
		var c *chunk
		switch {
		case s.held != nil:
			c, s.held = s.held, nil
		case win.Len() == 0:
			select {
			case c = <-s.chunks:
			case <-ctx.Done():
				return cdc.Batch{}, ctx.Err()
			case <-s.failed:
				return cdc.Batch{}, s.failErr
			case <-s.ctx.Done():
				return cdc.Batch{}, ErrClosed
			}
		default:
			select {
			case c = <-s.chunks:
			default:
				select {
				case c = <-s.chunks:
				case <-win.C():
					break fill
				case <-ctx.Done():
					break fill
				case <-s.failed:
					break fill
				case <-s.ctx.Done():
					break fill
				}
			}
		}
		if win.Len() > 0 && c.n > win.Room() {
			s.held = c
			break
		}
		ticket, ok := c.part.admit(c.end)
		s.ahead.Release(int64(c.n)) // out of the read-ahead, into the pipeline's window
		if !ok {
			c.rows.Recycle() // never handed out
			s.recycle(c)
			continue // partition revoked; its new owner re-reads these
		}
		refs = append(refs, ackRef{c.part, ticket})
		rows = append(rows, c.rows)
		taken = append(taken, c)
		total += len(c.events)
		rejects = append(rejects, c.rejects...)
		win.Add(c.n)
	}
	// One chunk's events are the batch's, and the chunk is recycled at the
	// ack; several are copied once into a slice with room for them all
	// (appending chunk by chunk regrew the slice, 12% of a drain's
	// allocated bytes), an acked batch's when one is spare, and their
	// chunks recycled now.
	var (
		events []cdc.Event
		whole  *chunk
	)
	switch len(taken) {
	case 0:
	case 1:
		whole = taken[0]
		events = whole.events
	default:
		events = s.spareEvents(total)
		for _, c := range taken {
			events = append(events, c.events...)
			s.recycle(c)
		}
	}
	clear(taken)
	s.taken = taken[:0]
	var acked atomic.Bool
	return cdc.Batch{
		Events:  events,
		Rejects: rejects,
		Ack: func(_ context.Context, err error) error {
			if !acked.CompareAndSwap(false, true) {
				return errors.New("kafka source: batch acked twice")
			}
			if err != nil {
				s.fail(fmt.Errorf("kafka source: batch nacked, restart to re-read from the committed offsets: %w", err))
				return nil
			}
			for _, r := range refs {
				r.part.ack(r.ticket)
			}
			for _, r := range rows {
				r.Recycle()
			}
			switch {
			case whole != nil:
				s.recycle(whole)
			case events != nil:
				clear(events)
				select {
				case s.spare <- events[:0]:
				default:
				}
			}
			return nil
		},
	}, nil
}

// Lag is how far the source trails the brokers, with binlog's meaning:
// now minus the timestamp of the last message fetched, on the assigned
// partition that trails most, and 0 when every assigned partition has been
// fetched to its high watermark (caught up) or nothing was fetched yet.
func (s *Source) Lag() time.Duration {
	s.mu.Lock()
	parts := s.parts
	s.mu.Unlock()
	var lag time.Duration
	now := time.Now()
	for _, p := range parts {
		h, pos, ts := p.hwm.Load(), p.pos.Load(), p.lastTime.Load()
		if h > pos && pos >= 0 && ts > 0 {
			lag = max(lag, now.Sub(time.Unix(0, ts)))
		}
	}
	return lag
}

// Close leaves the group after committing every offset acked so far. It
// does not wait for unacked batches: call it after the last Ack. Later
// acks are not committed; their messages are delivered again.
func (s *Source) Close(ctx context.Context) error {
	s.startOnce.Do(func() {}) // no start after Close
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()

	close(s.closeNow)
	s.cancel()
	if !started {
		return nil
	}
	if err := waitDone(ctx, s.runDone); err != nil {
		return fmt.Errorf("close kafka source: %w", err)
	}
	if s.group != nil {
		done := make(chan struct{})
		go func() {
			// Ends the generation (our commit loop makes the final commit)
			// and leaves the group.
			_ = s.group.Close()
			close(done)
		}()
		if err := waitDone(ctx, done); err != nil {
			return fmt.Errorf("close kafka source: leave group: %w", err)
		}
	}
	done := make(chan struct{})
	go func() { s.genWG.Wait(); close(done) }()
	if err := waitDone(ctx, done); err != nil {
		return fmt.Errorf("close kafka source: %w", err)
	}
	return nil
}

func waitDone(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Source) fail(err error) {
	s.failOnce.Do(func() {
		s.failErr = err
		close(s.failed)
	})
}

func (s *Source) failure() error {
	select {
	case <-s.failed:
		return s.failErr
	default:
	}
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}

func (s *Source) start() {
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	go s.run()
}

// run joins the group and starts each generation's partitions.
func (s *Source) run() {
	defer close(s.runDone)
	topics := s.cfg.Topics
	if s.topicRE != nil {
		var ok bool
		if topics, ok = s.resolveTopics(); !ok {
			return
		}
	}
	start := kafka.FirstOffset
	if s.cfg.Start == "latest" {
		start = kafka.LastOffset
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                s.cfg.Group,
		Brokers:           s.cfg.Brokers,
		Dialer:            s.dialer,
		Topics:            topics,
		HeartbeatInterval: s.cfg.HeartbeatInterval,
		SessionTimeout:    s.cfg.SessionTimeout,
		RebalanceTimeout:  s.cfg.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		// Rebalance when partitions are added to a topic.
		WatchPartitionChanges: true,
		StartOffset:           start,
		Timeout:               s.cfg.DialTimeout,
		Logger:                kafka.LoggerFunc(s.debugf),
		ErrorLogger:           kafka.LoggerFunc(s.warnf),
	})
	if err != nil {
		s.fail(fmt.Errorf("kafka source: consumer group: %w", err))
		return
	}
	s.mu.Lock()
	s.group = cg
	s.mu.Unlock()
	s.log.Info("joining consumer group", "group", s.cfg.Group, "topics", topics)
	for {
		gen, err := cg.Next(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return
			}
			s.log.Warn("consumer group", "group", s.cfg.Group, "err", err)
			continue
		}
		s.startGeneration(gen)
	}
}

func (s *Source) debugf(format string, args ...any) {
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug(fmt.Sprintf(format, args...))
	}
}

func (s *Source) warnf(format string, args ...any) {
	s.log.Warn(fmt.Sprintf(format, args...))
}

// resolveTopics lists the cluster's topics until some match topic_regex.
func (s *Source) resolveTopics() ([]string, bool) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !topicsRetry.Wait(s.ctx, attempt) {
			return nil, false
		}
		topics, err := s.listTopics()
		switch {
		case err != nil:
			s.log.Warn("list topics", "err", err)
		case len(topics) == 0:
			s.log.Info("no topic matches topic_regex yet", "topic_regex", s.cfg.TopicRegex)
		default:
			return topics, true
		}
	}
}

func (s *Source) listTopics() ([]string, error) {
	var errs []error
	for _, b := range s.cfg.Brokers {
		conn, err := s.dialer.DialContext(s.ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(s.cfg.DialTimeout))
		parts, err := conn.ReadPartitions()
		_ = conn.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata from %s: %w", b, err))
			continue
		}
		var topics []string
		for _, p := range parts {
			if !strings.HasPrefix(p.Topic, "__") && s.topicRE.MatchString(p.Topic) {
				topics = append(topics, p.Topic)
			}
		}
		slices.Sort(topics)
		return slices.Compact(topics), nil
	}
	return nil, errors.Join(errs...)
}

// startGeneration runs a fetcher per assigned partition and the commit
// loop, all bound to the generation: when it ends (rebalance, Close) they
// stop and the group waits for them before it rejoins.
func (s *Source) startGeneration(gen *kafka.Generation) {
	g := &genState{gen: gen, acked: make(chan struct{}, 1)}
	type start struct {
		p      *partState
		offset int64
	}
	var starts []start
	for topic, as := range gen.Assignments {
		for _, a := range as {
			p := &partState{topic: topic, partition: a.ID, gen: g, committed: -1}
			p.pos.Store(-1)
			if a.Offset >= 0 {
				p.committed = a.Offset
			}
			g.parts = append(g.parts, p)
			starts = append(starts, start{p, a.Offset})
		}
	}
	s.mu.Lock()
	s.parts = g.parts
	s.mu.Unlock()
	attrs := []any{"group", gen.GroupID, "generation", gen.ID, "member", gen.MemberID, "partitions", len(g.parts)}
	if at := s.revokedAt.Load(); at != 0 {
		// Kafka-go's group protocol is eager (stop the world): every
		// member gives up all its partitions at a rebalance and resumes
		// only once the new assignment is synced.
		took := time.Since(time.Unix(0, at))
		s.met.rebalances.Inc()
		s.met.rebalanceTime.Set(took.Seconds())
		attrs = append(attrs, "rebalance_took", took.Round(time.Millisecond))
	}
	s.log.Info("partitions assigned", attrs...)

	for _, st := range starts {
		g.fetchers.Add(1)
		s.genWG.Add(1)
		gen.Start(func(ctx context.Context) {
			defer s.genWG.Done()
			defer g.fetchers.Done()
			s.fetch(ctx, st.p, st.offset)
		})
	}
	s.genWG.Add(1)
	gen.Start(func(ctx context.Context) {
		defer s.genWG.Done()
		s.commitLoop(ctx, g)
	})
}

// commitLoop commits acked watermarks every commit_interval; when the
// generation ends it revokes the partitions, waits (up to revoke_timeout,
// not at Close) for their in-flight batches, and commits a last time while
// the generation is still valid.
func (s *Source) commitLoop(ctx context.Context, g *genState) {
	t := time.NewTicker(s.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.commit(g)
		case <-ctx.Done():
			s.revokedAt.Store(time.Now().UnixNano())
			s.revoke(g)
			s.commit(g)
			return
		}
	}
}

func (s *Source) revoke(g *genState) {
	for _, p := range g.parts {
		p.mu.Lock()
		p.revoked = true
		p.mu.Unlock()
	}
	g.fetchers.Wait()
	deadline := time.NewTimer(s.cfg.RevokeTimeout)
	defer deadline.Stop()
	for {
		pending := 0
		for _, p := range g.parts {
			p.mu.Lock()
			pending += p.wm.pending()
			p.mu.Unlock()
		}
		if pending == 0 {
			return
		}
		select {
		case <-g.acked:
		case <-s.closeNow:
			return
		case <-deadline.C:
			s.log.Warn("partitions revoked with batches unacked; they will be delivered again",
				"generation", g.gen.ID, "pending_batches", pending, "revoke_timeout", s.cfg.RevokeTimeout)
			return
		}
	}
}

// commit sends the watermark of every partition that moved since the last
// commit. Only this generation's partitions are committed, with its ID.
func (s *Source) commit(g *genState) {
	if s.dead.Load() {
		return
	}
	offsets := map[string]map[int]int64{}
	for _, p := range g.parts {
		p.mu.Lock()
		if p.started && p.wm.next > p.committed {
			if offsets[p.topic] == nil {
				offsets[p.topic] = map[int]int64{}
			}
			offsets[p.topic][p.partition] = p.wm.next
		}
		p.mu.Unlock()
	}
	if len(offsets) == 0 {
		return
	}
	if err := g.gen.CommitOffsets(offsets); err != nil {
		s.met.commitFailures.Inc()
		s.log.Warn("commit offsets", "generation", g.gen.ID, "err", err)
		return
	}
	for _, p := range g.parts {
		if off, ok := offsets[p.topic][p.partition]; ok {
			p.mu.Lock()
			p.committed = max(p.committed, off)
			p.mu.Unlock()
		}
	}
}

// admit records a chunk as handed out, unless the partition was revoked.
func (p *partState) admit(end int64) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.revoked || !p.started {
		return 0, false
	}
	return p.wm.add(end)
}

func (p *partState) ack(ticket uint64) {
	p.mu.Lock()
	p.wm.ack(ticket)
	p.mu.Unlock()
	select {
	case p.gen.acked <- struct{}{}:
	default:
	}
}

// fetch reads one partition from offset (or the start policy if offset is
// FirstOffset/LastOffset) until ctx ends, reconnecting on errors.
func (s *Source) fetch(ctx context.Context, p *partState, offset int64) {
	log := s.log.With("topic", p.topic, "partition", p.partition)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 && !fetchRetry.Wait(ctx, attempt) {
			return
		}
		if attempt > 0 {
			s.met.reconnects.Inc()
		}
		conn, err := s.dialLeader(ctx, p.topic, p.partition)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("dial partition leader", "err", err)
			}
			continue
		}
		offset, err = s.seek(conn, p, offset, log)
		if err == nil {
			err = s.commitStart(p)
		}
		if err != nil {
			_ = conn.Close()
			if ctx.Err() == nil {
				log.Warn("seek", "err", err)
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		from := offset
		err = s.read(ctx, conn, p, &offset)
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			return
		}
		if offset > from || errors.Is(err, kafka.OffsetOutOfRange) {
			attempt = 0 // made progress or must re-seek: retry after the shortest backoff
		}
		log.Warn("fetch", "offset", offset, "err", err)
	}
}

func (s *Source) dialLeader(ctx context.Context, topic string, partition int) (*kafka.Conn, error) {
	var errs []error
	for _, b := range s.cfg.Brokers {
		conn, err := s.dialer.DialLeader(ctx, "tcp", b, topic, partition)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// seek resolves offset against the partition's log and positions conn.
// FirstOffset/LastOffset (no committed offset) follow the start policy; an
// offset the log no longer has (retention) moves to the first one; one past
// the end (topic recreated) follows the start policy too.
func (s *Source) seek(conn *kafka.Conn, p *partState, offset int64, log *slog.Logger) (int64, error) {
	_ = conn.SetDeadline(time.Now().Add(s.cfg.DialTimeout))
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return offset, fmt.Errorf("read offsets: %w", err)
	}
	policy := first
	if s.cfg.Start == "latest" {
		policy = last
	}
	switch {
	case offset == kafka.FirstOffset:
		offset = first
	case offset == kafka.LastOffset:
		offset = last
	case offset < 0:
		offset = policy
	case offset < first:
		log.Warn("offset below the log start, skipping ahead", "offset", offset, "first", first)
		offset = first
	case offset > last:
		log.Warn("offset past the log end, applying the start policy", "offset", offset, "last", last, "start", s.cfg.Start)
		offset = policy
	}
	if _, err := conn.Seek(offset, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
		return offset, fmt.Errorf("seek %d: %w", offset, err)
	}
	_ = conn.SetDeadline(time.Time{})
	p.mu.Lock()
	if !p.started {
		p.started = true
		p.wm = newWatermark(offset)
	}
	handedOut := p.wm.last
	p.mu.Unlock()
	if offset < handedOut {
		// The log moved back under us (the topic was deleted and
		// recreated): the offsets from here on name other messages than
		// the ones already handed out, and the watermark would refuse
		// them. Stop loudly; a restart starts this partition afresh.
		err := fmt.Errorf("kafka source: %s/%d: log restarted below the offsets already read (resume at %d, read up to %d): topic recreated? restart to read it from the start policy",
			p.topic, p.partition, offset, handedOut)
		s.fail(err)
		return offset, err
	}
	p.pos.Store(offset)
	return offset, nil
}

// commitStart commits a partition's resolved start offset when the group
// has none, before any of its messages is handed out. Without it, a
// rebalance before the first periodic commit would make the next owner
// resolve the start policy again: with "latest", the messages written in
// between would be skipped. Until the commit succeeds nothing is fetched;
// fetch retries from the same resolved offset.
func (s *Source) commitStart(p *partState) error {
	p.mu.Lock()
	start, need := p.wm.next, p.committed < 0
	p.mu.Unlock()
	if !need || s.dead.Load() {
		return nil
	}
	if err := p.gen.gen.CommitOffsets(map[string]map[int]int64{p.topic: {p.partition: start}}); err != nil {
		s.met.commitFailures.Inc()
		return fmt.Errorf("commit start offset %d: %w", start, err)
	}
	p.mu.Lock()
	p.committed = max(p.committed, start)
	p.mu.Unlock()
	return nil
}

// read fetches from conn until an error, decoding messages into chunks of
// up to batch_size and queueing them for Next.
//
// Messages are read with Batch.ReadMessage, which allocates each key and
// value (a tenth of a canal-json drain's CPU with the collection it
// causes). Batch.Read fills a caller's buffer but drops the key (maxwell
// and debezium take primary keys from it), the timestamp (Lag) and the
// headers, and fails the whole fetch on a value larger than the buffer;
// kafka-go's Client.Fetch keeps them all without a per-message allocation
// but copies each response into its pages, holds it whole (up to
// fetch_max_bytes a partition) and decodes it by reflection: in an A/B of
// the drain it used no less CPU per row (2026-12-05).
//
// Read-ahead units are taken for several messages at once (credit: as
// many as the chunk has room for and the fetch can hold, up to minChunk)
// rather than one semaphore round per message; the credit left is given back before the
// next fetch waits, so a partition with nothing to read holds none. The
// units held are always the messages decoded and not yet taken plus the
// credit, so read_ahead still bounds them.
func (s *Source) read(ctx context.Context, conn *kafka.Conn, p *partState, offset *int64) error {
	readTimeout := s.cfg.FetchMaxWait + s.cfg.DialTimeout
	var credit int64
	// drop gives back c's messages and the credit: c is not handed over.
	drop := func(c *chunk) {
		s.ahead.Release(int64(c.n) + credit)
		credit = 0
	}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(readTimeout))
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{
			MinBytes: 1,
			MaxBytes: s.cfg.FetchMaxBytes,
			MaxWait:  s.cfg.FetchMaxWait,
		})
		hwm := batch.HighWaterMark()
		if hwm > 0 {
			p.hwm.Store(hwm)
		}
		c := s.newChunk(p, hwm-*offset)
		var lastTime time.Time
		for {
			msg, err := batch.ReadMessage()
			if err != nil {
				break
			}
			if credit == 0 {
				// the messages this fetch may still hold, as many as fit c,
				// at most minChunk: units free are then seldom fewer
				want := max(1, min(int64(c.room-len(c.events)), hwm-msg.Offset, minChunk))
				switch {
				case s.ahead.TryAcquire(want):
					credit = want
				case want > 1 && s.ahead.TryAcquire(1):
					credit = 1
				default:
					// read_ahead reached: hand over what is decoded (Next
					// frees room only by taking chunks), then wait for room.
					if c.n > 0 {
						if !s.send(ctx, c) {
							drop(c)
							_ = batch.Close()
							return ctx.Err()
						}
						c = s.newChunk(p, hwm-*offset)
					}
					if s.ahead.Acquire(ctx, 1) != nil {
						_ = batch.Close()
						return ctx.Err() // msg is not consumed: the next owner fetches it again
					}
					credit = 1
					_ = conn.SetReadDeadline(time.Now().Add(readTimeout))
				}
			}
			if !s.decode(ctx, c, &msg) {
				drop(c) // c is dropped with msg, whose unit is in the credit
				_ = batch.Close()
				return ctx.Err() // msg is not consumed: the next owner fetches it again
			}
			credit--
			if !msg.Time.IsZero() {
				lastTime = msg.Time
			}
			c.end = msg.Offset + 1
			c.n++
			*offset = c.end
			// Hand a chunk over when it is full rather than regrow its
			// events (7% of a drain's allocated bytes).
			if c.n >= s.cfg.BatchSize || len(c.events) >= c.room {
				if !s.send(ctx, c) {
					drop(c)
					_ = batch.Close()
					return ctx.Err()
				}
				c = s.newChunk(p, hwm-*offset)
				_ = conn.SetReadDeadline(time.Now().Add(readTimeout))
			}
		}
		if credit > 0 {
			s.ahead.Release(credit) // before the next fetch waits
			credit = 0
		}
		if !lastTime.IsZero() {
			p.lastTime.Store(lastTime.UnixNano())
		}
		if c.n == 0 {
			s.recycle(c)
		} else if !s.send(ctx, c) {
			drop(c)
			_ = batch.Close()
			return ctx.Err()
		}
		p.pos.Store(*offset)
		// An idle long poll ends with RequestTimedOut (the broker's
		// fetch max wait passed with no data); the connection is fine.
		if err := batch.Close(); err != nil && !errors.Is(err, kafka.RequestTimedOut) {
			return err
		}
	}
}

// newChunk returns a chunk with room for the messages the partition still
// has (remaining, from the high watermark), up to batch_size and the
// partition's share of read_ahead (at least minChunk); read hands the
// chunk over once it is full. A chunk that fills Next's batch alone is
// handed out without a copy. The chunk's events are a recycled chunk's
// when one with the capacity is free.
func (s *Source) newChunk(p *partState, remaining int64) *chunk {
	n := min(max(remaining, 1), int64(s.cfg.BatchSize))
	if p.gen != nil && len(p.gen.parts) > 1 {
		n = min(n, max(minChunk, int64(s.cfg.ReadAhead/len(p.gen.parts))))
	}
	select {
	case c := <-s.free:
		if int64(cap(c.events)) >= n {
			c.part, c.room = p, int(n)
			return c
		}
	default:
	}
	return &chunk{part: p, room: int(n), events: make([]cdc.Event, 0, n)}
}

// recycle clears c (its events hold rows the batch now owns) and offers it
// to newChunk; a full free list drops it.
func (s *Source) recycle(c *chunk) {
	clear(c.events)
	*c = chunk{events: c.events[:0]}
	select {
	case s.free <- c:
	default:
	}
}

// spareEvents returns an empty slice with room for n events: an acked
// batch's when one is spare and large enough, else a new one with an
// eighth more room, so that it is large enough for most later batches of
// a drain (their sizes vary a little below batch_size).
func (s *Source) spareEvents(n int) []cdc.Event {
	select {
	case evs := <-s.spare:
		if cap(evs) >= n {
			return evs
		}
	default:
	}
	return make([]cdc.Event, 0, n+n/8)
}

func (s *Source) send(ctx context.Context, c *chunk) bool {
	select {
	case s.chunks <- c:
		return true
	case <-ctx.Done():
		return false
	}
}

// decode appends msg's events to c, or a Reject if it does not decode.
// While the schema source does not answer it decodes msg again with
// backoff (decode.Retry), holding the partition; false if ctx ended
// meanwhile, and then c is unchanged.
func (s *Source) decode(ctx context.Context, c *chunk, msg *kafka.Message) bool {
	dm := decode.Message{
		Key:       msg.Key,
		Value:     msg.Value,
		Topic:     msg.Topic,
		Partition: int32(msg.Partition),
		Offset:    msg.Offset,
	}
	if c.rows == nil {
		c.rows = s.rowPool.Rows()
	}
	dm.Rows = c.rows
	dm.Events = c.events // a decoder may build msg's events in its room
	if len(msg.Headers) > 0 {
		dm.Headers = make(map[string][]byte, len(msg.Headers))
		for _, h := range msg.Headers {
			dm.Headers[h.Key] = h.Value
		}
	}
	events, err := decode.Retry(ctx, s.dec, dm)
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		c.rejects = append(c.rejects, cdc.Reject{
			Pos:    cdc.Position{Text: posText(msg)},
			Raw:    msg.Value,
			Reason: err,
		})
		return true
	}
	var pos string
	for i := range events {
		if events[i].Pos.Text == "" {
			if pos == "" {
				pos = posText(msg)
			}
			events[i].Pos.Text = pos
		}
	}
	c.events = decode.Append(c.events, events)
	return true
}

// posText is "topic/partition@offset".
func posText(m *kafka.Message) string {
	b := make([]byte, 0, len(m.Topic)+24)
	b = append(b, m.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(m.Partition), 10)
	b = append(b, '@')
	b = strconv.AppendInt(b, m.Offset, 10)
	return string(b)
}

// Dialer returns the dialer the source connects to the brokers with:
// cfg's TLS, SASL, client_id and dial_timeout, and its connections read
// through a readBuffer buffer (bufferReads). The bench's broker ceiling
// reads through it too, so that it reads the way the source does.
func Dialer(cfg Config) (*kafka.Dialer, error) {
	cfg = cfg.withDefaults()
	d, err := kafkaauth.Dialer(cfg.SASL, cfg.TLS, cfg.ClientID, cfg.DialTimeout)
	if err != nil {
		return nil, err
	}
	bufferReads(d)
	return d, nil
}

// readBuffer is the socket read buffer of the source's connections.
const readBuffer = 64 << 10

// bufferReads makes d's connections read the socket through a readBuffer
// buffer. kafka-go reads a connection through a 4 KiB bufio.Reader, so a
// fetch of small messages cost a read syscall every few messages (5% of a
// canal-json drain's CPU); with the larger buffer underneath, kafka-go's
// reads are copies and the syscalls 16 times fewer. TLS, when configured,
// is layered on top by kafka-go as before.
func bufferReads(d *kafka.Dialer) {
	dial := d.DialFunc
	if dial == nil {
		// A DialFunc replaces the dialer's own net.Dialer: keep its settings.
		dial = (&net.Dialer{LocalAddr: d.LocalAddr, FallbackDelay: d.FallbackDelay, KeepAlive: d.KeepAlive}).DialContext
	}
	d.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBuffer)}, nil
	}
}

// bufferedConn reads c through r. Deadlines and Close act on c; a read
// error (a deadline passing) is returned once the buffered bytes are read.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
