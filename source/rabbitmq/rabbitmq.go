// Package rabbitmq is rowsync's RabbitMQ source: an amqp091-go consumer
// that decodes each message into cdc.Events and acks only after the
// pipeline has applied them.
//
// One goroutine per consumer owns its connection (one consumer by default:
// see Config.Consumers for several). It consumes with a prefetch window,
// decodes each delivery as it arrives and closes batches on size or max
// wait; Next hands them out. Acks are manual: a batch is acked with a single
// multiple-ack of its highest delivery tag, which is valid because batches
// of one channel are contiguous and acked in order. Nothing is acked before
// Batch.Ack, so a crash anywhere makes the broker redeliver.
//
// Connection or channel loss (broker restart, a forced close, a missed
// heartbeat) makes the goroutine reconnect with capped exponential backoff
// and jitter, re-establish QoS and the consumer, and go on; Next simply
// blocks meanwhile. The broker requeues every unacked delivery of the lost
// channel and redelivers it, in queue order, on the new one. Delivery tags
// belong to one channel, so every batch remembers the channel it came from:
// acking a batch of a dead channel does nothing (its messages come again),
// and it never acks tags on the new channel.
package rabbitmq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/backoff"
	"github.com/rowsync/rowsync/internal/batch"
	"github.com/rowsync/rowsync/metrics"
	"github.com/rowsync/rowsync/source/decode"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("rabbitmq source closed")

var (
	_ cdc.Source = (*Source)(nil)
	_ cdc.Pinger = (*Source)(nil)
)

// Source consumes one queue. Next must be called from one goroutine at a
// time; Batch.Ack may be called from any goroutine, in Next order.
type Source struct {
	cfg Config // with defaults
	dec decode.Decoder
	log *slog.Logger
	tls *tls.Config

	ctx     context.Context // cancelled by Close, or by a consumer's fatal error
	cancel  context.CancelFunc
	start   sync.Once
	batches chan *pending // bounded hand-over to Next
	done    chan struct{} // closed when every consumer has returned
	errOnce sync.Once
	err     error // first fatal error, set before done is closed

	lanes []*lane // one per consumer

	ackFrames atomic.Int64 // basic.ack / basic.nack frames sent, for tests

	// rowPool holds the rows of acked batches for the decoder
	// (decode.Message.Rows); each batch takes its own.
	rowPool cdc.RowPool

	reconnects *metrics.Counter // nil (no-op) unless Instrument was called
	recycles   *metrics.Counter
}

var _ metrics.Instrumented = (*Source)(nil)

// Instrument registers the source's metrics on m, labelled with its
// queue: rowsync_rabbitmq_reconnects_total (connection or channel lost and
// re-established) and rowsync_rabbitmq_channel_recycles_total (channels
// closed on purpose after a nack, for redelivery). Call it before the
// first Next.
func (s *Source) Instrument(m *metrics.Metrics) {
	l := prometheus.Labels{"queue": s.cfg.Queue}
	s.reconnects = m.Counter("rowsync_rabbitmq_reconnects_total", "Connections or channels lost and re-established.", l)
	s.recycles = m.Counter("rowsync_rabbitmq_channel_recycles_total", "Channels closed after a nack so the broker redelivers in order.", l)
}

// lane is one consumer: its own connection and channel. Lane 0's are the
// ones tests inspect (Conn, Generation).
type lane struct {
	id   int
	tag  string               // consumer tag ("" for the library's)
	link atomic.Pointer[link] // the current connection, for tests
	gen  atomic.Uint64        // generation of the channel being consumed
}

// link is a connection and its socket.
type link struct {
	conn *amqp.Connection
	raw  net.Conn
}

// session is one channel. Delivery tags are only meaningful on it.
type session struct {
	ch  *amqp.Channel
	gen uint64

	lostOnce sync.Once
	lost     chan struct{} // closed when the session is abandoned
	recycle  atomic.Bool   // abandoned on request (Ack with an error), not by a failure
}

// kill marks s abandoned: its batches' acks become no-ops.
func (s *session) kill() { s.lostOnce.Do(func() { close(s.lost) }) }

func (s *session) dead() bool {
	select {
	case <-s.lost:
		return true
	default:
		return s.ch.IsClosed()
	}
}

// New returns a Source for cfg that decodes messages with dec. It does no
// I/O: the first Next connects. A nil logger discards logs.
func New(cfg Config, dec decode.Decoder, logger *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dec == nil {
		return nil, errors.New("rabbitmq: nil decoder")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	tc, err := cfg.tlsClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Source{
		cfg:     cfg,
		dec:     decode.Guard(dec),
		log:     logger.With("source", "rabbitmq", "queue", cfg.Queue),
		tls:     tc,
		ctx:     ctx,
		cancel:  cancel,
		batches: make(chan *pending, 1),
		done:    make(chan struct{}),
	}
	for i := range cfg.Consumers {
		l := &lane{id: i, tag: cfg.ConsumerTag}
		if cfg.Consumers > 1 && l.tag != "" {
			l.tag += "-" + strconv.Itoa(i+1)
		}
		s.lanes = append(s.lanes, l)
	}
	return s, nil
}

// Config returns the source's configuration with defaults applied.
func (s *Source) Config() Config { return s.cfg }

// Next returns the next batch. It blocks while the broker is unreachable
// (the source keeps reconnecting) until ctx ends. An error other than ctx's
// is fatal: the queue is missing, the declared arguments clash with the
// existing queue, access is refused, a message lacks the version several
// ordered consumers need, or the source was closed.
func (s *Source) Next(ctx context.Context) (cdc.Batch, error) {
	s.start.Do(func() { go s.run() })
	for {
		select {
		case p := <-s.batches:
			if p.sess.dead() {
				// Its channel is gone: the broker redelivers these
				// messages on the new one, and handing them out now would
				// only replay them ahead of their redelivery.
				continue
			}
			return p.batch(), nil
		case <-s.done:
			if s.err != nil {
				return cdc.Batch{}, s.err
			}
			return cdc.Batch{}, ErrClosed
		case <-ctx.Done():
			return cdc.Batch{}, ctx.Err()
		}
	}
}

// Close stops consuming and closes the channel and connection. It acks
// nothing: unacked deliveries go back to the queue. It waits for the
// consumer goroutine until ctx ends.
func (s *Source) Close(ctx context.Context) error {
	s.cancel()
	started := true
	s.start.Do(func() { started = false; close(s.done) })
	if !started {
		return nil
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close rabbitmq source: %w", ctx.Err())
	}
}

// Ping connects, checks that the queue exists and disconnects.
func (s *Source) Ping(ctx context.Context) error {
	conn, _, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclarePassive(s.cfg.Queue, false, false, false, false, nil); err != nil {
		if s.cfg.Declare && isCode(err, amqp.NotFound) {
			return nil // declared on first Next
		}
		return fmt.Errorf("queue %q: %w", s.cfg.Queue, err)
	}
	return nil
}

// run runs every consumer and closes done when all have returned.
func (s *Source) run() {
	var wg sync.WaitGroup
	for _, l := range s.lanes {
		wg.Go(func() { s.runLane(l) })
	}
	wg.Wait()
	close(s.done)
}

// fail records the source's fatal error (the first one wins) and stops
// the other consumers.
func (s *Source) fail(err error) {
	s.errOnce.Do(func() { s.err = err })
	s.cancel()
}

// runLane owns one consumer's connection: connect, consume until the
// channel is lost, reconnect with backoff, until Close or a fatal error.
func (s *Source) runLane(l *lane) {
	ctx := s.ctx
	log := s.log
	if len(s.lanes) > 1 {
		log = log.With("consumer", l.id+1)
	}
	var conn *amqp.Connection
	defer func() {
		if conn != nil {
			_ = conn.CloseDeadline(time.Now().Add(5 * time.Second))
		}
	}()
	var gen uint64
	attempt := 0
	for {
		if conn != nil && conn.IsClosed() {
			conn = nil
		}
		if conn == nil {
			c, raw, err := s.dial(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if permanent(err) {
					s.fail(fmt.Errorf("rabbitmq connect: %w", err))
					return
				}
				if !s.sleep(ctx, log, attempt, "connect", err) {
					return
				}
				attempt++
				continue
			}
			conn = c
			l.link.Store(&link{conn: c, raw: raw})
		}
		gen++
		sess, deliveries, closed, err := s.open(conn, l.tag, gen)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if permanent(err) {
				s.fail(err)
				return
			}
			if !s.sleep(ctx, log, attempt, "open channel", err) {
				return
			}
			attempt++
			continue
		}
		if attempt > 0 || gen > 1 {
			log.Info("rabbitmq consuming again", "generation", gen)
		}
		if attempt > 0 {
			s.reconnects.Inc()
		}
		attempt = 0
		l.gen.Store(gen)
		err = s.consume(ctx, sess, deliveries, closed)
		sess.kill()
		_ = sess.ch.Close() // requeues this channel's unacked deliveries
		if errors.Is(err, errFatal) {
			s.fail(err)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if sess.recycle.Load() {
			s.recycles.Inc()
			log.Info("rabbitmq channel recycled for redelivery", "generation", gen)
			continue
		}
		if !s.sleep(ctx, log, attempt, "channel lost", err) {
			return
		}
		attempt++
	}
}

// sleep logs why it waits and waits one backoff step; false if ctx ended.
func (s *Source) sleep(ctx context.Context, log *slog.Logger, attempt int, what string, err error) bool {
	d := s.cfg.Reconnect.policy().Delay(attempt + 1)
	log.Warn("rabbitmq "+what+"; reconnecting", "error", err, "retry_in", d, "attempt", attempt+1)
	return backoff.Sleep(ctx, d)
}

// dial connects; the handshake is abandoned when ctx ends.
func (s *Source) dial(ctx context.Context) (*amqp.Connection, net.Conn, error) {
	var (
		mu  sync.Mutex
		raw net.Conn
	)
	var tc *tls.Config
	if s.tls != nil {
		tc = s.tls.Clone() // DialConfig fills ServerName in place
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(s.cfg.ConnectionName)
	cfg := amqp.Config{
		Heartbeat:       s.cfg.Heartbeat,
		TLSClientConfig: tc,
		Properties:      props,
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: s.cfg.DialTimeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Heartbeats have not started yet: bound the TLS and AMQP
			// handshakes; the library clears the deadline afterwards.
			if err := c.SetDeadline(time.Now().Add(s.cfg.DialTimeout)); err != nil {
				c.Close()
				return nil, err
			}
			mu.Lock()
			raw = c
			mu.Unlock()
			return &lazyDeadline{Conn: c}, nil
		},
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if raw != nil {
			raw.Close()
		}
	})
	conn, err := amqp.DialConfig(s.cfg.URL, cfg)
	stop()
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return conn, raw, nil
}

// lazyDeadline is the socket as the client library sees it. The library's
// heartbeater moves the read deadline to now+3×heartbeat after every frame
// it reads, three per message, and each move re-arms a runtime timer
// under the socket's lock. lazyDeadline applies a moved deadline only once
// the socket's would fall below three quarters of the distance asked for,
// so a silent peer is still detected after 2¼ heartbeat intervals of
// silence instead of 3, and the socket is touched every few seconds
// instead of tens of thousands of times a second. An earlier or a zero
// deadline applies at once.
type lazyDeadline struct {
	net.Conn
	mu  sync.Mutex
	set time.Time // the socket's read deadline
}

func (c *lazyDeadline) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.IsZero() && !c.set.IsZero() && !t.Before(c.set) && t.Sub(c.set) < time.Until(t)/4 {
		return nil
	}
	c.set = t
	return c.Conn.SetReadDeadline(t)
}

func (c *lazyDeadline) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set = t
	return c.Conn.SetDeadline(t)
}

// open opens a channel on conn, sets QoS, declares or checks the queue,
// binds it and starts consuming.
func (s *Source) open(conn *amqp.Connection, tag string, gen uint64) (*session, <-chan amqp.Delivery, <-chan *amqp.Error, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open channel: %w", err)
	}
	fail := func(what string, err error) (*session, <-chan amqp.Delivery, <-chan *amqp.Error, error) {
		_ = ch.Close()
		return nil, nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Qos(s.cfg.Prefetch, 0, false); err != nil {
		return fail("qos", err)
	}
	q := s.cfg.Queue
	if s.cfg.Declare {
		args := amqp.Table{}
		if s.cfg.SingleActiveConsumer {
			args["x-single-active-consumer"] = true
		}
		if s.cfg.DeadLetterExchange != "" {
			args["x-dead-letter-exchange"] = s.cfg.DeadLetterExchange
		}
		if _, err := ch.QueueDeclare(q, true, false, false, false, args); err != nil {
			return fail(fmt.Sprintf("declare queue %q", q), err)
		}
		if s.cfg.Exchange != "" {
			keys := s.cfg.RoutingKeys
			if len(keys) == 0 {
				keys = []string{""}
			}
			for _, k := range keys {
				if err := ch.QueueBind(q, k, s.cfg.Exchange, false, nil); err != nil {
					return fail(fmt.Sprintf("bind queue %q to exchange %q key %q", q, s.cfg.Exchange, k), err)
				}
			}
		}
	} else if _, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err != nil {
		return fail(fmt.Sprintf("queue %q", q), err)
	}
	deliveries, err := ch.Consume(q, tag, false, false, false, false, nil)
	if err != nil {
		return fail(fmt.Sprintf("consume %q", q), err)
	}
	return &session{ch: ch, gen: gen, lost: make(chan struct{})}, deliveries, closed, nil
}

// consume turns deliveries into batches until the session ends.
//
// Its loop runs once per message, so it waits on as few channels as it
// can: the deliveries, the open batch's max-wait timer and sess.lost (which
// Close's cancellation also closes). A channel or connection failure closes
// the deliveries channel after sending its error to closed, so closed is
// only read then, and while a finished batch waits for Next.
func (s *Source) consume(ctx context.Context, sess *session, deliveries <-chan amqp.Delivery, closed <-chan *amqp.Error) error {
	stop := context.AfterFunc(ctx, sess.kill)
	defer stop()
	var b *pending
	win := batch.NewWindow(s.cfg.BatchSize, s.cfg.MaxWait)
	defer win.Reset()
	ended := func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errRecycled
	}
	// emit hands b to Next, unless the session ends first (then b's
	// deliveries are redelivered and b is dropped).
	emit := func() error {
		p := b
		b = nil
		win.Reset()
		select {
		case s.batches <- p:
			return nil
		case e := <-closed:
			return closeErr(e)
		case <-sess.lost:
			return ended()
		}
	}
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				// The channel closed (its error, if any, was sent first)
				// or the broker cancelled the consumer (queue deleted).
				select {
				case e := <-closed:
					return closeErr(e)
				default:
					return errors.New("consumer cancelled by the broker")
				}
			}
			if b == nil {
				b = s.newPending(sess)
			}
			if err := s.add(ctx, b, &d); err != nil {
				return err
			}
			// One message may carry many events: the batch also closes
			// once it holds batch_size events.
			if win.Add(1) || len(b.events) >= win.Size() {
				if err := emit(); err != nil {
					return err
				}
			}
		case <-win.C():
			if err := emit(); err != nil {
				return err
			}
		case <-sess.lost:
			return ended()
		}
	}
}

var errRecycled = errors.New("channel recycled")

// errFatal marks an error of consume that reconnecting cannot fix.
var errFatal = errors.New("rabbitmq")

func closeErr(e *amqp.Error) error {
	if e == nil {
		return errors.New("channel closed")
	}
	return e
}

// permanent reports errors that reconnecting cannot fix: access refused,
// queue or vhost not found, arguments that clash with the existing queue.
// A connection limit (also NOT_ALLOWED) may lift, so it is retried.
func permanent(err error) bool {
	var e *amqp.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case amqp.AccessRefused, amqp.NotFound, amqp.PreconditionFailed:
		return true
	case amqp.NotAllowed:
		return !strings.Contains(e.Reason, "limit")
	}
	return false
}

func isCode(err error, code int) bool {
	var e *amqp.Error
	return errors.As(err, &e) && e.Code == code
}

// pos is the human-readable position of a delivery: "queue@tag".
func (s *Source) pos(tag uint64) string {
	return s.cfg.Queue + "@" + strconv.FormatUint(tag, 10)
}
