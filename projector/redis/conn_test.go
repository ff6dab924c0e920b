package redis

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/tcpproxy"
)

// Tests of the projector's own connections (conn.go): how they are
// dialled (AUTH, SELECT, TLS), kept, dropped and cancelled.

// rowsOf returns n inserts of rows db.t id 0..n-1 whose field v is tag.
func rowsOf(db string, n int, tag string, version uint64) []cdc.Event {
	evs := make([]cdc.Event, n)
	for i := range evs {
		evs[i] = cdc.Event{DB: db, Table: "t", Op: cdc.Insert, PK: []string{"id"},
			After: cdc.RowOf("id", int64(i), "v", tag), Pos: cdc.Position{Version: version}}
	}
	return evs
}

// checkRows fails unless the n rows of rowsOf hold tag.
func checkRows(t *testing.T, c *goredis.Client, db string, n int, tag string) {
	t.Helper()
	for i := range n {
		if got := c.HGet(context.Background(), fmt.Sprintf("%s_t_%d", db, i), "v").Val(); got != tag {
			t.Fatalf("row %d: v = %q, want %q", i, got, tag)
		}
	}
}

// transient fails unless err is a non-nil error that retries the batch:
// no BatchError, not permanent.
func transient(t *testing.T, err error, what string) {
	t.Helper()
	var be *cdc.BatchError
	switch {
	case err == nil:
		t.Fatalf("%s: Apply = nil, want an error", what)
	case errors.As(err, &be), errors.Is(err, cdc.ErrPermanent):
		t.Fatalf("%s: Apply = %v, want a transient error", what, err)
	}
	t.Logf("%s: %v", what, err)
}

func idleConns(p *Projector) []*respConn {
	p.conns.mu.Lock()
	defer p.conns.mu.Unlock()
	return append([]*respConn(nil), p.conns.idle...)
}

func TestOwnConnections(t *testing.T) {
	c := newClient(t)
	db := uniqueDB(t, c)
	p, err := NewWithConfig(Config{ScriptKeys: 8, Parallel: 2}, c, rules(t, db+`\..*`, TableConfig{}), nil)
	must(t, err)
	closeAtEnd(t, p)
	if p.conns == nil {
		t.Fatal("a *goredis.Client is not served by the projector's own connections")
	}
	// Four shards at once, each Apply 13 chunks, two at a time.
	g, ctx := errgroup.WithContext(t.Context())
	for w := range 4 {
		g.Go(func() error {
			for b := range 5 {
				if err := p.Apply(ctx, rowsOf(db, 100, fmt.Sprint(w, b), 0)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	must(t, g.Wait())
	// Up to 8 were in flight; those above Parallel (2) are closed after
	// a second unused.
	if idle := len(idleConns(p)); idle <= 2 {
		t.Logf("only %d connections idle after the load", idle)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		idle, open := len(idleConns(p)), p.conns.open.Load()
		if idle <= 2 && int64(idle) == open {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections idle, %d open a minute after the load; want at most Parallel (2) idle and none other open", idle, open)
		}
	}
	// Used again, the pool serves from the idle ones.
	dialled := p.conns.dialled.Load()
	must(t, p.Apply(t.Context(), rowsOf(db, 10, "again", 0)))
	if n := p.conns.dialled.Load(); n != dialled {
		t.Errorf("a call with connections idle dialled %d more", n-dialled)
	}
	must(t, p.Close(t.Context()))
	if n := p.conns.open.Load(); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
	transient(t, p.Apply(t.Context(), rowsOf(db, 1, "x", 0)), "after Close")
}

func TestGoRedisFallback(t *testing.T) {
	// A client the projector's connections cannot honour keeps go-redis.
	var connects atomic.Int64
	c := goredis.NewClient(&goredis.Options{Addr: testAddr, DB: testDB,
		OnConnect: func(context.Context, *goredis.Conn) error { connects.Add(1); return nil }})
	t.Cleanup(func() { _ = c.Close() })
	db := uniqueDB(t, c)
	p := newProjector(t, c, rules(t, db+`\..*`, TableConfig{TypeCheck: true}))
	if p.conns != nil {
		t.Fatal("a client with OnConnect is served by the projector's own connections")
	}
	must(t, p.Apply(t.Context(), rowsOf(db, 10, "a", 0)))
	checkRows(t, c, db, 10, "a")
	if connects.Load() == 0 {
		t.Error("OnConnect never ran: the write did not go through go-redis")
	}
}

func TestSelectDB(t *testing.T) {
	c := newClient(t) // DB 1
	db := uniqueDB(t, c)
	p := newProjector(t, c, rules(t, db+`\..*`, TableConfig{}))
	must(t, p.Apply(t.Context(), rowsOf(db, 3, "a", 0)))
	checkRows(t, c, db, 3, "a")
	db0 := goredis.NewClient(&goredis.Options{Addr: testAddr})
	defer db0.Close()
	if n := db0.Exists(t.Context(), db+"_t_0", db+"_t_1", db+"_t_2").Val(); n != 0 {
		t.Errorf("%d rows written to DB 0, want all in DB %d", n, testDB)
	}
}

func TestAuthACL(t *testing.T) {
	admin := newClient(t)
	db := uniqueDB(t, admin)
	user, pass := "rowsync-test-"+db, "pw-"+db
	ctx := t.Context()
	must(t, admin.Do(ctx, "acl", "setuser", user, "reset", "on", ">"+pass, "~"+db+"*", "~{"+db+"*", "+@all").Err())
	t.Cleanup(func() { admin.Do(context.Background(), "acl", "deluser", user) })
	tc := TableConfig{VersionField: "_v"} // the commit script too
	for name, opt := range map[string]goredis.Options{
		"password": {Username: user, Password: pass},
		"provider": {CredentialsProvider: func() (string, string) { return user, pass }},
		"context provider": {CredentialsProviderContext: func(context.Context) (string, string, error) {
			return user, pass, nil
		}},
	} {
		t.Run(name, func(t *testing.T) {
			opt.Addr, opt.DB = testAddr, testDB
			c := goredis.NewClient(&opt)
			defer c.Close()
			p := newProjector(t, c, rules(t, db+`\..*`, tc))
			tag := strings.ReplaceAll(name, " ", "-")
			must(t, p.Apply(ctx, rowsOf(db, 20, tag, 7)))
			checkRows(t, admin, db, 20, tag)
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		c := goredis.NewClient(&goredis.Options{Addr: testAddr, DB: testDB, Username: user, Password: "wrong"})
		defer c.Close()
		p := newProjector(t, c, rules(t, db+`\..*`, tc))
		err := p.Apply(ctx, rowsOf(db, 1, "x", 8))
		transient(t, err, "wrong password")
		if !strings.Contains(err.Error(), "auth: WRONGPASS") {
			t.Errorf("Apply = %v, want the AUTH error", err)
		}
	})
	t.Run("key outside the user's keys", func(t *testing.T) {
		// Refused when queued: the command is named with its own error.
		c := goredis.NewClient(&goredis.Options{Addr: testAddr, DB: testDB, Username: user, Password: pass})
		defer c.Close()
		p := newProjector(t, c, rules(t, db+`\..*`, TableConfig{Key: "other:{id}"}))
		err := p.Apply(ctx, rowsOf(db, 1, "x", 0))
		transient(t, err, "NOPERM")
		if !strings.HasPrefix(err.Error(), "redis apply: del: NOPERM") {
			t.Errorf("Apply = %v, want redis apply: del: NOPERM ...", err)
		}
		// The connection stays in step: a row the user may write goes in.
		p2 := newProjector(t, c, rules(t, db+`\..*`, TableConfig{}))
		must(t, p2.Apply(ctx, rowsOf(db, 1, "y", 0)))
		checkRows(t, admin, db, 1, "y")
	})
}

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rowsync test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

func TestTLS(t *testing.T) {
	cert, roots := selfSigned(t)
	px := tcpproxy.StartTLS(t, testAddr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	c := goredis.NewClient(&goredis.Options{Addr: px.Addr(), DB: testDB, TLSConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}})
	defer c.Close()
	admin := newClient(t)
	db := uniqueDB(t, admin)
	p := newProjector(t, c, rules(t, db+`\..*`, TableConfig{VersionField: "_v"}))
	for i := range 3 { // the second and third reuse the connection
		tag := fmt.Sprint("tls", i)
		must(t, p.Apply(t.Context(), rowsOf(db, 30, tag, uint64(i+1))))
		checkRows(t, admin, db, 30, tag)
	}
	idle := idleConns(p)
	if len(idle) == 0 {
		t.Fatal("no idle connection")
	}
	for _, cn := range idle {
		if _, ok := cn.nc.(*tls.Conn); !ok {
			t.Errorf("connection is a %T, want *tls.Conn", cn.nc)
		}
	}
	// A client that does not trust the proxy's certificate gets nowhere.
	bad := goredis.NewClient(&goredis.Options{Addr: px.Addr(), DB: testDB, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}})
	defer bad.Close()
	err := newProjector(t, bad, rules(t, db+`\..*`, TableConfig{})).Apply(t.Context(), rowsOf(db, 1, "x", 0))
	transient(t, err, "untrusted certificate")
}

// killClients kills the connections named name and returns how many.
func killClients(t *testing.T, admin *goredis.Client, name string) int {
	t.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	must(t, err)
	n := 0
	for line := range strings.SplitSeq(list, "\n") {
		if !strings.Contains(" "+line+" ", " name="+name+" ") {
			continue
		}
		for f := range strings.FieldsSeq(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				must(t, admin.Do(context.Background(), "client", "kill", "id", id).Err())
				n++
			}
		}
	}
	return n
}

func TestServerKillsConnection(t *testing.T) {
	admin := newClient(t)
	db := uniqueDB(t, admin)
	name := "rowsync-test-" + db
	c := goredis.NewClient(&goredis.Options{Addr: testAddr, DB: testDB, ClientName: name})
	defer c.Close()
	p, err := NewWithConfig(Config{ScriptKeys: 4, Parallel: 2}, c, rules(t, db+`\..*`, TableConfig{VersionField: "_v"}), nil)
	must(t, err)
	closeAtEnd(t, p)
	ctx := t.Context()
	must(t, p.Apply(ctx, rowsOf(db, 20, "a", 1)))

	t.Run("between Apply calls", func(t *testing.T) {
		if n := killClients(t, admin, name); n == 0 {
			t.Fatal("no connection of the projector's found by its client name")
		}
		// The idle connections are found closed before use; should the
		// check miss one, the error is transient and the next call works.
		if err := p.Apply(ctx, rowsOf(db, 20, "b", 2)); err != nil {
			transient(t, err, "after CLIENT KILL")
			t.Logf("first Apply after CLIENT KILL: %v", err)
			must(t, p.Apply(ctx, rowsOf(db, 20, "b", 2)))
		}
		checkRows(t, admin, db, 20, "b")
	})

	t.Run("during an Apply call", func(t *testing.T) {
		var once sync.Once
		p.conns.beforeWrite = func(nc net.Conn) {
			once.Do(func() {
				must(t, admin.ClientKillByFilter(context.Background(), "addr", nc.LocalAddr().String()).Err())
			})
		}
		defer func() { p.conns.beforeWrite = nil }()
		open := p.conns.open.Load()
		transient(t, p.Apply(ctx, rowsOf(db, 20, "c", 3)), "connection killed during Apply")
		if n := p.conns.open.Load(); n >= open+1 {
			t.Errorf("%d connections open, was %d: the killed one was kept", n, open)
		}
		must(t, p.Apply(ctx, rowsOf(db, 20, "c", 3)))
		checkRows(t, admin, db, 20, "c")
	})
	noStaging(t, admin, db)
}

func TestNoScriptAfterFlush(t *testing.T) {
	// A private server: SCRIPT FLUSH on the shared one would disturb
	// other tests.
	c := goredis.NewClient(&goredis.Options{Addr: startRedis(t)})
	defer c.Close()
	p := newProjector(t, c, rules(t, `d\..*`, TableConfig{VersionField: "_v"}))
	ctx := t.Context()
	must(t, p.Apply(ctx, rowsOf("d", 10, "a", 1))) // NOSCRIPT, load, again
	checkRows(t, c, "d", 10, "a")
	must(t, c.ScriptFlush(ctx).Err())
	must(t, p.Apply(ctx, rowsOf("d", 10, "b", 2)))
	checkRows(t, c, "d", 10, "b")
	if ok := c.ScriptExists(ctx, p.script.sha).Val(); len(ok) != 1 || !ok[0] {
		t.Error("commit script not loaded again after SCRIPT FLUSH")
	}
}

func TestReadOnlyDropsConnection(t *testing.T) {
	// A master turned replica (a failover) refuses writes with READONLY:
	// a transient error, and the connection is dropped so that the next
	// dial (with a failover client: to the new master) starts afresh.
	c := goredis.NewClient(&goredis.Options{Addr: startRedis(t)})
	defer c.Close()
	p := newProjector(t, c, rules(t, `d\..*`, TableConfig{}))
	ctx := t.Context()
	must(t, p.Apply(ctx, rowsOf("d", 10, "a", 0)))
	must(t, c.Do(ctx, "replicaof", "127.0.0.1", "1").Err()) // a master that never answers
	err := p.Apply(ctx, rowsOf("d", 10, "b", 0))
	transient(t, err, "replica")
	if !strings.Contains(err.Error(), "READONLY") {
		t.Errorf("Apply = %v, want READONLY", err)
	}
	if n := p.conns.open.Load(); n != 0 {
		t.Errorf("%d connections open after READONLY, want 0", n)
	}
	must(t, c.Do(ctx, "replicaof", "no", "one").Err())
	must(t, p.Apply(ctx, rowsOf("d", 10, "b", 0)))
	checkRows(t, c, "d", 10, "b")
}

// blackHole accepts connections and reads them, never answering.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, cn)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, cn) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, cn := range conns {
			_ = cn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestContextEndsRequest(t *testing.T) {
	// A server that never answers, no read or write timeout: only the
	// context ends the wait, in the request (DB 0: no setup) or in the
	// connection's setup (SELECT).
	addr := blackHole(t)
	for _, tc := range []struct {
		name string
		db   int
		ctx  func(context.Context) (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel request", 0, cancelSoon, context.Canceled},
		{"cancel setup", 3, cancelSoon, context.Canceled},
		{"deadline request", 0, func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 100*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := goredis.NewClient(&goredis.Options{Addr: addr, DB: tc.db, ReadTimeout: -1, WriteTimeout: -1, DialTimeout: time.Hour})
			defer c.Close()
			p := newProjector(t, c, rules(t, `d\..*`, TableConfig{TypeCheck: true}))
			ctx, cancel := tc.ctx(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Apply(ctx, rowsOf("d", 600, "a", 0)) }()
			select {
			case err := <-done:
				transient(t, err, tc.name)
				if !errors.Is(err, tc.want) {
					t.Errorf("Apply = %v, want %v", err, tc.want)
				}
			case <-time.After(2 * time.Minute):
				t.Fatal("Apply still waiting two minutes after its context ended")
			}
			if n := p.conns.open.Load(); n != 0 {
				t.Errorf("%d connections open after a cancelled request, want 0", n)
			}
		})
	}
}

func cancelSoon(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	return ctx, cancel
}

// Ping goes over the projector's own connections, so readiness fails
// where the chunks would (a wrong password here) and not only where
// go-redis's pool does.
func TestPingOwnConnections(t *testing.T) {
	c := newClient(t)
	db := uniqueDB(t, c)
	p := newProjector(t, c, rules(t, db+`\..*`, TableConfig{}))
	must(t, p.Ping(t.Context()))
	if n := p.conns.dialled.Load(); n != 1 {
		t.Errorf("Ping dialled %d of the projector's connections, want 1", n)
	}
	must(t, p.Ping(t.Context())) // the idle one again
	if n, idle := p.conns.dialled.Load(), len(idleConns(p)); n != 1 || idle != 1 {
		t.Errorf("after a second Ping: %d dialled, %d idle; want 1 and 1", n, idle)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.Ping(ctx); err == nil {
		t.Error("Ping with a cancelled context = nil")
	}

	user, pass := "rowsync-ping-"+db, "pw-"+db
	must(t, c.Do(t.Context(), "acl", "setuser", user, "reset", "on", ">"+pass, "+@all").Err())
	t.Cleanup(func() { c.Do(context.Background(), "acl", "deluser", user) })
	wrong := goredis.NewClient(&goredis.Options{Addr: testAddr, DB: testDB, Username: user, Password: "wrong"})
	defer wrong.Close()
	pw := newProjector(t, wrong, rules(t, db+`\..*`, TableConfig{}))
	if err := pw.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("Ping with a wrong password = %v, want the AUTH error", err)
	}
	if n := pw.conns.open.Load(); n != 0 {
		t.Errorf("%d connections open after a failed Ping", n)
	}

	must(t, p.Close(t.Context()))
	if err := p.Ping(t.Context()); err == nil {
		t.Error("Ping after Close = nil")
	}
}
