package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestComponentMetricsSafeOnNil(t *testing.T) {
	var m *Metrics
	c := m.Counter("rowsync_test_things_total", "Things.", nil)
	g := m.Gauge("rowsync_test_backlog", "Backlog.", nil)
	if c != nil || g != nil {
		t.Fatal("a nil Metrics returned live collectors")
	}
	h := m.Histogram("rowsync_test_seconds", "Seconds.", nil, nil)
	if h != nil {
		t.Fatal("a nil Metrics returned a live histogram")
	}
	c.Inc() // no-ops, no panic
	c.Add(2)
	g.Set(3)
	h.Observe(1)
}

func TestComponentMetricsShared(t *testing.T) {
	m := New()
	a := m.Counter("rowsync_test_reconnects_total", "Reconnects.", prometheus.Labels{"source": "kafka"})
	b := m.Counter("rowsync_test_reconnects_total", "Reconnects.", prometheus.Labels{"source": "kafka"})
	other := m.Counter("rowsync_test_reconnects_total", "Reconnects.", prometheus.Labels{"source": "rabbitmq"})
	a.Inc()
	b.Add(2)
	other.Inc()
	g := m.Gauge("rowsync_test_backlog", "Backlog.", nil)
	g.Set(7)
	m.Histogram("rowsync_test_seconds", "Seconds.", nil, []float64{1, 2}).Observe(1.5)
	m.Histogram("rowsync_test_seconds", "Seconds.", nil, []float64{1, 2}).Observe(0.5)
	got := map[string]float64{}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range mt.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case mt.Counter != nil:
				got[key] = mt.Counter.GetValue()
			case mt.Gauge != nil:
				got[key] = mt.Gauge.GetValue()
			case mt.Histogram != nil:
				got[key] = float64(mt.Histogram.GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"rowsync_test_reconnects_total,source=kafka":    3,
		"rowsync_test_reconnects_total,source=rabbitmq": 1,
		"rowsync_test_backlog":                          7,
		"rowsync_test_seconds":                          2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}
