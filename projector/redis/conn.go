package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The chunk path of a single-node client (standalone or failover, both a
// *goredis.Client) does not go through go-redis: its TxPipeline builds a
// Cmd object per command, boxes every reply and costs several times the
// instructions of writing the protocol directly, on the hottest path of
// rowsync. The projector keeps a few connections of its own instead,
// dialled and set up as go-redis would set up the client's (its Dialer,
// which does TLS and, for a failover client, finds the current master;
// AUTH; SELECT; CLIENT SETNAME), and writes each chunk's MULTI/EXEC in one
// write through appendCommand. Everything else (Ping, the cluster path,
// the other components) stays on go-redis.
//
// Not honoured here, so such a client keeps the go-redis path
// (usesGoRedis): an OnConnect hook (it needs go-redis's own connection),
// a StreamingCredentialsProvider (it re-authenticates live connections)
// and a Limiter. Hooks added to the client (AddHook) do not see the
// chunk's transactions, and dial retries (DialerRetries) are left to the
// pipeline's retry of the batch.

// usesGoRedis says why the chunk path of a client with these options must
// stay on go-redis; "" when the projector's own connections serve it.
func usesGoRedis(opt *goredis.Options) string {
	switch {
	case opt.Dialer == nil:
		return "no dialer"
	case opt.OnConnect != nil:
		return "an OnConnect hook"
	case opt.StreamingCredentialsProvider != nil:
		return "a streaming credentials provider"
	case opt.Limiter != nil:
		return "a limiter"
	}
	return ""
}

// connPool holds the projector's idle connections, the most recently
// used on top. A chunk takes one or dials one, so there are as many as
// chunks in flight (Parallel per Apply call, and the pipeline's workers
// call Apply at once). Idle ones above maxIdle are closed once they have
// not been used for trimAfter: at rest at most maxIdle stay open, and
// under load a connection is not closed and dialled again per call,
// which cost BenchmarkApply/parallel4 1.3 dials and about 1.5 µs of CPU
// per row of 1,000. Safe for concurrent use.
type connPool struct {
	opt     *goredis.Options
	maxIdle int

	mu     sync.Mutex
	idle   []*respConn
	closed bool
	// trim, armed while more than maxIdle are idle, closes those unused
	// for trimAfter.
	trim *time.Timer
	// trimming counts trimIdle calls closing connections, for close.
	trimming sync.WaitGroup

	// open counts connections dialled and not yet closed, dialled all
	// (tests, benchmarks).
	open, dialled atomic.Int64
	// beforeWrite, when set (tests), runs before a chunk is written.
	beforeWrite func(net.Conn)
}

// errPoolClosed is returned by an Apply after Close.
var errPoolClosed = errors.New("redis projector closed")

func newConnPool(opt *goredis.Options, maxIdle int) *connPool {
	return &connPool{opt: opt, maxIdle: maxIdle}
}

// respConn is one connection: its own read buffer and write buffer.
type respConn struct {
	nc   net.Conn
	rd   *respReader
	wbuf []byte
	// created and used bound its life (ConnMaxLifetime, ConnMaxIdleTime).
	created, used time.Time
	// cancelIO makes pending and later I/O fail at once (a cancelled
	// context); check reports a connection the server closed while idle
	// (nil where it cannot tell).
	cancelIO func()
	check    func() error
}

// maxKeptBuf bounds the write buffer a connection keeps between chunks.
const maxKeptBuf = 1 << 20

// get returns an idle connection that still looks usable, else a new one.
func (p *connPool) get(ctx context.Context) (*respConn, error) {
	now := time.Now()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errPoolClosed
		}
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		cn := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if p.usable(cn, now) {
			return cn, nil
		}
		p.closeConn(cn)
	}
	return p.dial(ctx)
}

// usable reports whether an idle connection may be reused: within the
// client's ConnMaxLifetime and ConnMaxIdleTime, and not closed by the
// server meanwhile (a restart, CLIENT KILL, its timeout setting), which
// would otherwise cost a failed batch.
func (p *connPool) usable(cn *respConn, now time.Time) bool {
	if d := p.opt.ConnMaxLifetime; d > 0 && now.Sub(cn.created) >= d {
		return false
	}
	if d := p.opt.ConnMaxIdleTime; d > 0 && now.Sub(cn.used) >= d {
		return false
	}
	return cn.check == nil || cn.check() == nil
}

// trimAfter is how long a connection above maxIdle may stay idle.
const trimAfter = time.Second

// put gives back a connection whose reply stream is in step.
func (p *connPool) put(cn *respConn) {
	cn.used = time.Now()
	if cap(cn.wbuf) > maxKeptBuf {
		cn.wbuf = nil // one huge chunk's buffer is not kept
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.closeConn(cn)
		return
	}
	p.idle = append(p.idle, cn)
	if len(p.idle) > p.maxIdle && p.trim == nil {
		p.trim = time.AfterFunc(trimAfter, p.trimIdle)
	}
	p.mu.Unlock()
}

// trimIdle closes the idle connections above maxIdle that were not used
// for trimAfter (the bottom of the stack), and runs again later while
// more than maxIdle remain.
func (p *connPool) trimIdle() {
	p.mu.Lock()
	p.trim = nil
	if p.closed {
		p.mu.Unlock()
		return
	}
	now := time.Now()
	n := 0 // idle connections to close, from the bottom
	for len(p.idle)-n > p.maxIdle && now.Sub(p.idle[n].used) >= trimAfter {
		n++
	}
	old := slices.Clone(p.idle[:n])
	p.idle = slices.Delete(p.idle, 0, n)
	if len(p.idle) > p.maxIdle {
		p.trim = time.AfterFunc(trimAfter, p.trimIdle)
	}
	p.trimming.Add(1)
	p.mu.Unlock()
	defer p.trimming.Done()
	for _, cn := range old {
		p.closeConn(cn)
	}
}

func (p *connPool) closeConn(cn *respConn) {
	_ = cn.nc.Close()
	p.open.Add(-1)
}

// close closes the idle connections; those in use are closed when they
// come back. Later gets fail. It returns once no idle connection is left
// open.
func (p *connPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	if p.trim != nil {
		p.trim.Stop()
		p.trim = nil
	}
	p.mu.Unlock()
	for _, cn := range idle {
		p.closeConn(cn)
	}
	p.trimming.Wait()
}

// dial opens a connection with the client's Dialer and sets it up as
// go-redis would: AUTH (Username/Password, or the credentials provider),
// SELECT when DB is not 0, CLIENT SETNAME when ClientName is set. The
// exchange is bounded by DialTimeout, the read/write timeouts and ctx.
func (p *connPool) dial(ctx context.Context) (*respConn, error) {
	opt := p.opt
	if opt.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opt.DialTimeout)
		defer cancel()
	}
	nc, err := opt.Dialer(ctx, opt.Network, opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	p.open.Add(1)
	p.dialled.Add(1)
	now := time.Now()
	cn := &respConn{nc: nc, rd: newRespReader(nc), created: now, used: now,
		cancelIO: func() { _ = nc.SetDeadline(time.Unix(1, 0)) }, check: newConnCheck(nc)}
	if err := cn.setup(ctx, opt); err != nil {
		p.closeConn(cn)
		return nil, fmt.Errorf("dial: %w", err)
	}
	return cn, nil
}

// setup authenticates and selects the DB, in one round trip.
func (cn *respConn) setup(ctx context.Context, opt *goredis.Options) error {
	user, pass, err := credentials(ctx, opt)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	var names []string
	b := cn.wbuf[:0]
	// As go-redis falls back to when HELLO is refused: AUTH only with a
	// password; the connection stays on RESP2.
	if pass != "" {
		if user != "" {
			b = appendStrings(b, "auth", user, pass)
		} else {
			b = appendStrings(b, "auth", pass)
		}
		names = append(names, "auth")
	}
	if opt.DB > 0 {
		b = appendStrings(b, "select", strconv.Itoa(opt.DB))
		names = append(names, "select")
	}
	if opt.ClientName != "" {
		b = appendStrings(b, "client", "setname", opt.ClientName)
		names = append(names, "client setname")
	}
	cn.wbuf = b
	if len(names) == 0 {
		return nil
	}
	var first error
	err = cn.roundTrip(ctx, opt, b, func(rd *respReader) error {
		for _, name := range names {
			rerr, err := rd.status("OK")
			if err != nil {
				return err
			}
			if rerr != "" && first == nil {
				first = fmt.Errorf("%s: %w", name, rerr)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return first
}

// credentials returns the username and password go-redis would
// authenticate with.
func credentials(ctx context.Context, opt *goredis.Options) (user, pass string, err error) {
	switch {
	case opt.CredentialsProviderContext != nil:
		return opt.CredentialsProviderContext(ctx)
	case opt.CredentialsProvider != nil:
		user, pass = opt.CredentialsProvider()
		return user, pass, nil
	}
	return opt.Username, opt.Password, nil
}

// roundTrip writes req and runs read over the replies, under the client's
// WriteTimeout and ReadTimeout (as go-redis has normalized them: > 0 a
// limit, 0 none, < 0 deadlines left alone), ctx's deadline, and ctx's
// cancellation, which makes the pending I/O fail at once. Any error leaves
// the connection unusable: the caller closes it. A connection whose I/O
// was cancelled is also unusable after a successful round trip (broken).
func (cn *respConn) roundTrip(ctx context.Context, opt *goredis.Options, req []byte, read func(*respReader) error) error {
	now := time.Now()
	dl, hasDL := ctx.Deadline()
	if opt.WriteTimeout >= 0 {
		_ = cn.nc.SetWriteDeadline(deadline(now, opt.WriteTimeout, dl, hasDL))
	}
	if opt.ReadTimeout >= 0 {
		_ = cn.nc.SetReadDeadline(deadline(now, opt.ReadTimeout, dl, hasDL))
	}
	var stop func() bool
	if ctx.Done() != nil {
		// No goroutine: the context calls cancelIO only if it ends
		// before stop.
		stop = context.AfterFunc(ctx, cn.cancelIO)
	}
	_, err := cn.nc.Write(req)
	if err == nil {
		if err = read(cn.rd); errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%s closed the connection: %w", cn.nc.RemoteAddr(), err)
		}
	}
	if stop != nil && !stop() {
		// cancelIO ran or is running: the deadline is in the past.
		if err == nil {
			err = errBroken
		}
	}
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	if hasDL && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		// The socket's deadline was ctx's, a moment before ctx's own
		// timer fired.
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// errBroken reports a round trip that completed while its context was
// cancelled: its replies were read, but the connection is not reused.
var errBroken = errors.New("connection left with a past deadline")

// deadline is now+timeout, or ctx's deadline dl when that is sooner or
// timeout is 0; the zero time (none) for neither.
func deadline(now time.Time, timeout time.Duration, dl time.Time, hasDL bool) time.Time {
	var t time.Time
	if timeout > 0 {
		t = now.Add(timeout)
	}
	if hasDL && (t.IsZero() || dl.Before(t)) {
		return dl
	}
	return t
}

// dropsConn reports whether an error reply means the connection should
// be closed although its reply stream is in step: the server turned
// replica or lost its master (a failover; the next dial finds the new
// master), is loading, or no longer knows the connection's user.
func dropsConn(e redisError) bool {
	for _, p := range [...]string{"READONLY", "MASTERDOWN", "LOADING", "NOAUTH"} {
		if e.hasPrefix(p) {
			return true
		}
	}
	return false
}

// runChunkRESP is runChunk on the projector's own connections. Error
// replies map as on the go-redis path: a command's → "redis apply:
// <cmd>: <err>", the commit script's NOSCRIPT → SCRIPT LOAD and re-send
// (at most twice), its other errors → "redis apply: commit: <err>". A
// command refused at queue time is named with its own error, not the
// EXECABORT that follows. Every error is transient (retry the batch);
// I/O and protocol errors and a cancelled ctx also close the connection.
func (p *Projector) runChunkRESP(ctx context.Context, c *chunk) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	cn, err := p.conns.get(ctx)
	if err != nil {
		return result{}, fmt.Errorf("redis apply: %w", err)
	}
	r, keep, err := p.chunkOn(ctx, cn, c)
	if keep {
		p.conns.put(cn)
	} else {
		p.conns.closeConn(cn)
	}
	return r, err
}

// chunkOn runs c on cn; keep reports whether cn may be reused.
func (p *Projector) chunkOn(ctx context.Context, cn *respConn, c *chunk) (r result, keep bool, err error) {
	opt := p.conns.opt
	for attempt := 0; ; attempt++ {
		req, n, commit, err := encodeChunk(cn.wbuf[:0], c, p.script.sha)
		cn.wbuf = req
		if err != nil {
			return result{}, true, fmt.Errorf("redis apply: %w", err)
		}
		if n == 0 {
			return result{}, true, nil
		}
		if hook := p.conns.beforeWrite; hook != nil {
			hook(cn.nc)
		}
		var out chunkReplies
		if err := cn.roundTrip(ctx, opt, req, func(rd *respReader) error {
			return readChunk(rd, n, commit, &out)
		}); err != nil {
			return result{}, false, fmt.Errorf("redis apply: %w", err)
		}
		keep := true
		fail := func(e redisError, format string, args ...any) (result, bool, error) {
			return result{}, keep && !dropsConn(e), fmt.Errorf(format, append(args, e)...)
		}
		switch {
		case out.multiErr != "":
			keep = false // MULTI refused: the connection is not what we think
			return fail(out.multiErr, "redis apply: multi: %w")
		case out.queueErr != "" && !(out.queueAt == commit && out.queueErr.hasPrefix("NOSCRIPT")):
			return fail(out.queueErr, "redis apply: %s: %w", c.cmdAt(out.queueAt, commit))
		case out.execErr != "" && out.queueErr == "":
			return fail(out.execErr, "redis apply: exec: %w")
		case out.cmdErr != "":
			return fail(out.cmdErr, "redis apply: %s: %w", c.cmdAt(out.cmdAt, commit))
		case commit < 0:
			return result{}, true, nil
		}
		cerr, isErr := out.commit.(redisError)
		if out.queueErr != "" {
			cerr, isErr = out.queueErr, true // NOSCRIPT at queue time
		}
		if isErr && cerr.hasPrefix("NOSCRIPT") && attempt < 2 {
			if err := p.loadScript(ctx, cn); err != nil {
				var rerr redisError
				return result{}, errors.As(err, &rerr) && !dropsConn(rerr), fmt.Errorf("redis script load: %w", err)
			}
			continue
		}
		if isErr {
			return fail(cerr, "redis apply: commit: %w")
		}
		r, err := parseResult(out.commit, len(c.ops))
		if err != nil {
			return result{}, true, fmt.Errorf("redis apply: %w", err)
		}
		return r, true, nil
	}
}

// loadScript loads the commit script on cn's server (SCRIPT LOAD), the
// server the chunk is re-sent to.
func (p *Projector) loadScript(ctx context.Context, cn *respConn) error {
	req := appendStrings(cn.wbuf[:0], "script", "load", p.script.src)
	cn.wbuf = req
	var v any
	if err := cn.roundTrip(ctx, p.conns.opt, req, func(rd *respReader) (err error) {
		v, err = rd.readValue(0)
		return err
	}); err != nil {
		return err
	}
	switch v := v.(type) {
	case redisError:
		return v
	case string:
		if v == p.script.sha {
			return nil
		}
	}
	return fmt.Errorf("unexpected SCRIPT LOAD reply %v, want %s", v, p.script.sha)
}

// ping sends PING on an idle or new connection and wants PONG. Like a
// chunk, it closes the connection on any error instead of reusing it.
func (p *connPool) ping(ctx context.Context) error {
	cn, err := p.get(ctx)
	if err != nil {
		return err
	}
	req := appendStrings(cn.wbuf[:0], "ping")
	cn.wbuf = req
	var rerr redisError
	err = cn.roundTrip(ctx, p.opt, req, func(rd *respReader) (err error) {
		rerr, err = rd.status("PONG")
		return err
	})
	if err == nil && rerr != "" {
		err = rerr
	}
	if err != nil {
		p.closeConn(cn)
		return err
	}
	p.put(cn)
	return nil
}
