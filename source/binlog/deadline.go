package binlog

import (
	"context"
	"net"
	"sync"
	"time"
)

// lazyDeadlineConn is the replication connection as go-mysql sees it. With
// a ReadTimeout, go-mysql sets the socket's read deadline to now+timeout
// at least three times per binlog event (before reading a packet's header,
// before each buffer of its body, and once per event handled), and each
// set takes the runtime's poller lock and moves a timer: a few percent of
// a drain's CPU, more on a stream of small transactions.
//
// It passes a deadline on only when the socket's would be wrong by more
// than slack: a later deadline goes to the socket slack later than asked,
// so the calls of the next slack of activity, each asking for less than
// that, change nothing; an earlier one (the syncer's Close waking the
// reader) goes at once, as asked. So for the last deadline asked, t, the
// socket's lies in [t, t+slack]: a silent connection is still declared
// dead no sooner than ReadTimeout after its last packet, at most slack
// later.
type lazyDeadlineConn struct {
	net.Conn
	slack time.Duration
	mu    sync.Mutex // Close sets a deadline from another goroutine
	read  time.Time  // the socket's read deadline; zero: none or unknown
}

// lazyDeadlineDialer is go-mysql's default dialer with its connections
// wrapped in a lazyDeadlineConn of slack.
func lazyDeadlineDialer(slack time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &lazyDeadlineConn{Conn: c, slack: slack}, nil
	}
}

func (c *lazyDeadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.IsZero() && !c.read.IsZero() && !t.After(c.read) && !t.Before(c.read.Add(-c.slack)) {
		return nil // the socket's deadline is in [t, t+slack] already
	}
	set := t
	if !t.IsZero() && (c.read.IsZero() || t.After(c.read)) {
		set = t.Add(c.slack)
	}
	return c.setRead(set, c.Conn.SetReadDeadline(set))
}

func (c *lazyDeadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setRead(t, c.Conn.SetDeadline(t))
}

// setRead records the socket's read deadline after setting it to t
// returned err: unknown after a failure, so the next one is passed on.
func (c *lazyDeadlineConn) setRead(t time.Time, err error) error {
	c.read = t
	if err != nil {
		c.read = time.Time{}
	}
	return err
}
