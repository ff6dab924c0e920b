package backoff

import (
	"context"
	"testing"
	"time"
)

func TestCap(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{5, 1600 * time.Millisecond},
		{7, 6400 * time.Millisecond},
		{8, 10 * time.Second},
		{70, 10 * time.Second}, // no overflow
		{1 << 30, 10 * time.Second},
	} {
		if got := p.Cap(tc.attempt); got != tc.want {
			t.Errorf("Cap(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
	if got := (Policy{Max: time.Second}).Cap(3); got != time.Second {
		t.Errorf("no Min: Cap = %v, want Max", got)
	}
	if got := (Policy{Min: time.Hour, Max: time.Second}).Cap(1); got != time.Second {
		t.Errorf("Min above Max: Cap = %v, want Max", got)
	}
}

func TestDelayJitterBounds(t *testing.T) {
	p := Policy{Min: 10 * time.Millisecond, Max: time.Second}
	for attempt := 1; attempt <= 10; attempt++ {
		c := p.Cap(attempt)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.Delay(attempt)
			if d < c/2 || d > c {
				t.Fatalf("Delay(%d) = %v outside [%v, %v]", attempt, d, c/2, c)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("Delay(%d) never varies: no jitter", attempt)
		}
	}
	if d := (Policy{}).Delay(3); d != 0 {
		t.Errorf("zero policy delay %v", d)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep on a cancelled context reported a full sleep")
	}
	if Sleep(ctx, 0) {
		t.Error("zero Sleep on a cancelled context reported true")
	}
	if !Sleep(context.Background(), time.Microsecond) {
		t.Error("short Sleep reported cancellation")
	}
	if (Policy{Min: time.Hour, Max: time.Hour}).Wait(ctx, 1) {
		t.Error("Wait on a cancelled context reported a full sleep")
	}
}
