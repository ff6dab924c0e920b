package rabbitmq

import (
	"net"
	"testing"
	"time"
)

// deadlineRecorder is a socket that records the read deadlines set on it.
type deadlineRecorder struct {
	net.Conn
	reads []time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.reads = append(d.reads, t)
	return nil
}

func (d *deadlineRecorder) SetDeadline(t time.Time) error {
	d.reads = append(d.reads, t)
	return nil
}

// TestLazyDeadline: a read deadline moved later by a little is not
// applied, one moved by more than a quarter of its distance is; earlier
// and zero deadlines apply at once; the socket's deadline is never later
// than the one asked for.
func TestLazyDeadline(t *testing.T) {
	rec := &deadlineRecorder{}
	c := &lazyDeadline{Conn: rec}
	now := time.Now()
	const span = 30 * time.Second // 3 × the default heartbeat
	steps := []struct {
		name  string
		t     time.Time
		apply bool
	}{
		{"first", now.Add(span), true},
		{"a frame later", now.Add(span + time.Millisecond), false},
		{"a few seconds later", now.Add(span + 5*time.Second), false},
		{"past a quarter", now.Add(span + 10*time.Second), true},
		{"earlier", now.Add(time.Second), true},
		{"zero", time.Time{}, true},
		{"after zero", now.Add(span), true},
	}
	for _, st := range steps {
		n := len(rec.reads)
		if err := c.SetReadDeadline(st.t); err != nil {
			t.Fatal(err)
		}
		if applied := len(rec.reads) > n; applied != st.apply {
			t.Errorf("%s: applied %v, want %v", st.name, applied, st.apply)
		}
		if set := rec.reads[len(rec.reads)-1]; !st.t.IsZero() && set.After(st.t) {
			t.Errorf("%s: socket deadline %v later than asked %v", st.name, set, st.t)
		}
	}
	if err := c.SetDeadline(time.Time{}); err != nil || !rec.reads[len(rec.reads)-1].IsZero() {
		t.Fatalf("SetDeadline(zero) not applied: %v", err)
	}
	if err := c.SetReadDeadline(now.Add(span)); err != nil || len(rec.reads) == 0 || !rec.reads[len(rec.reads)-1].Equal(now.Add(span)) {
		t.Fatal("a deadline after SetDeadline(zero) not applied")
	}
}
