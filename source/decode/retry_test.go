package decode

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
)

// flaky fails with ErrSchemaUnavailable down times, then gives an event
// (or err, if set).
type flaky struct {
	down, calls int
	err         error
}

func (f *flaky) Decode(Message) ([]cdc.Event, error) {
	f.calls++
	if f.calls <= f.down {
		return nil, fmt.Errorf("%w: schema of a.b: connection refused", ErrSchemaUnavailable)
	}
	if f.err != nil {
		return nil, f.err
	}
	return []cdc.Event{{DB: "a", Table: "b"}}, nil
}

func TestRetry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bad := errors.New("not a number")
	for _, tc := range []struct {
		name      string
		d         *flaky
		wantCalls int
		wantErr   error
	}{
		{"decodes at once", &flaky{}, 1, nil},
		{"same message again until the schema source answers", &flaky{down: 3}, 4, nil},
		{"a message error is not retried", &flaky{err: bad}, 1, bad},
		{"a message error after an outage", &flaky{down: 2, err: bad}, 3, bad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Retry(ctx, tc.d, Message{})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.d.calls != tc.wantCalls {
				t.Errorf("%d decodes, want %d", tc.d.calls, tc.wantCalls)
			}
			if err == nil && len(evs) != 1 {
				t.Errorf("events = %v", evs)
			}
		})
	}
	t.Run("context ends the wait", func(t *testing.T) {
		cctx, ccancel := context.WithCancel(ctx)
		d := &flaky{down: 1 << 30}
		done := make(chan error, 1)
		go func() {
			_, err := Retry(cctx, d, Message{})
			done <- err
		}()
		ccancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		case <-ctx.Done():
			t.Fatal("Retry did not end with its context")
		}
	})
}
