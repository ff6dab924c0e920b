package binlog

import (
	"errors"
	"net"
	"testing"
	"time"
)

// deadlineRecorder is a net.Conn that records the read deadlines set.
type deadlineRecorder struct {
	net.Conn
	sets []time.Time
	fail bool
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	if d.fail {
		return errors.New("refused")
	}
	d.sets = append(d.sets, t)
	return nil
}

func (d *deadlineRecorder) SetDeadline(t time.Time) error { return d.SetReadDeadline(t) }

// TestLazyDeadline: the socket's read deadline stays within [t, t+slack]
// of the last deadline asked, t, while most sets of a busy stream pass
// nothing on; an earlier deadline (Close waking the reader), a cleared
// one and the first after a failed set go through as asked.
func TestLazyDeadline(t *testing.T) {
	rec := &deadlineRecorder{}
	const timeout, slack = 30 * time.Second, 2 * time.Second
	c := &lazyDeadlineConn{Conn: rec, slack: slack}
	base := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	check := func(asked time.Time) {
		t.Helper()
		if len(rec.sets) == 0 {
			t.Fatalf("no deadline set for %v", asked)
		}
		got := rec.sets[len(rec.sets)-1]
		if got.Before(asked) || got.After(asked.Add(slack)) {
			t.Fatalf("socket deadline %v for asked %v: outside [t, t+%v]", got, asked, slack)
		}
	}
	// a busy stream: a deadline every millisecond for 10s
	var last time.Time
	for ms := range 10000 {
		last = base.Add(time.Duration(ms)*time.Millisecond + timeout)
		if err := c.SetReadDeadline(last); err != nil {
			t.Fatal(err)
		}
		check(last)
	}
	if n := len(rec.sets); n > 10 {
		t.Fatalf("%d deadlines passed on for 10s of events with %v slack, want at most 10", n, slack)
	}
	// Close: 100ms from now goes through as asked
	wake := base.Add(10*time.Second + 100*time.Millisecond)
	if err := c.SetReadDeadline(wake); err != nil {
		t.Fatal(err)
	}
	if got := rec.sets[len(rec.sets)-1]; !got.Equal(wake) {
		t.Fatalf("earlier deadline set as %v, want %v", got, wake)
	}
	// cleared, then a new one
	if err := c.SetReadDeadline(time.Time{}); err != nil || !rec.sets[len(rec.sets)-1].IsZero() {
		t.Fatalf("clearing: %v, socket %v", err, rec.sets[len(rec.sets)-1])
	}
	next := base.Add(11*time.Second + timeout)
	if err := c.SetReadDeadline(next); err != nil {
		t.Fatal(err)
	}
	check(next)
	// a failed set leaves the deadline unknown: the next is passed on
	rec.fail = true
	if err := c.SetReadDeadline(next.Add(time.Hour)); err == nil {
		t.Fatal("a refused deadline reported no error")
	}
	rec.fail = false
	n := len(rec.sets)
	if err := c.SetReadDeadline(next); err != nil || len(rec.sets) != n+1 {
		t.Fatalf("after a failure: %v, %d sets, want %d", err, len(rec.sets), n+1)
	}
	check(next)
	// SetDeadline sets the read deadline as asked
	if err := c.SetDeadline(last); err != nil || !rec.sets[len(rec.sets)-1].Equal(last) {
		t.Fatalf("SetDeadline: %v, socket %v", err, rec.sets[len(rec.sets)-1])
	}
}

// BenchmarkReadDeadline is what go-mysql's deadline per packet and per
// event costs on a loopback TCP connection, set directly and through
// lazyDeadlineConn (30s timeout, slack 1/16).
//
//	go test -run '^$' -bench ReadDeadline ./source/binlog/
func BenchmarkReadDeadline(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1))
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	const timeout = 30 * time.Second
	for _, lazy := range []bool{false, true} {
		b.Run(map[bool]string{false: "direct", true: "lazy"}[lazy], func(b *testing.B) {
			c := raw
			if lazy {
				c = &lazyDeadlineConn{Conn: raw, slack: timeout / 16}
			}
			for b.Loop() {
				if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
