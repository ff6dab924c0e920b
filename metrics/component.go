package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Instrumented is implemented by components (sources, sinks, the
// checkpoint saver) that count their own things: reconnects, rebalances,
// failed checkpoint saves, backlogs. The wiring calls Instrument once,
// before the component starts; a component never instrumented counts
// nothing and works the same.
type Instrumented interface {
	Instrument(m *Metrics)
}

// Counter is a counter a component owns. Its methods do nothing on a nil
// *Counter, so a component built without metrics needs no checks.
type Counter struct{ c prometheus.Counter }

// Inc adds one.
func (c *Counter) Inc() {
	if c != nil {
		c.c.Inc()
	}
}

// Add adds v (v >= 0).
func (c *Counter) Add(v float64) {
	if c != nil {
		c.c.Add(v)
	}
}

// Gauge is a gauge a component owns; its methods do nothing on a nil *Gauge.
type Gauge struct{ g prometheus.Gauge }

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) {
	if g != nil {
		g.g.Set(v)
	}
}

// Counter returns the counter name{labels}, registering it on first use;
// the same name and labels give the same counter. On a nil *Metrics it
// returns nil (a no-op counter). Names follow rowsync_<component>_<what>_total.
func (m *Metrics) Counter(name, help string, labels prometheus.Labels) *Counter {
	if m == nil {
		return nil
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
	return &Counter{register(m, c).(prometheus.Counter)}
}

// Gauge returns the gauge name{labels}, registering it on first use; on a
// nil *Metrics it returns nil (a no-op gauge).
func (m *Metrics) Gauge(name, help string, labels prometheus.Labels) *Gauge {
	if m == nil {
		return nil
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels})
	return &Gauge{register(m, g).(prometheus.Gauge)}
}

// register registers c, or returns the collector already registered under
// the same name and labels. A clash (same name, other help or label names)
// is a programming error.
func register(m *Metrics, c prometheus.Collector) prometheus.Collector {
	err := m.Registry.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return are.ExistingCollector
	}
	panic("metrics: " + err.Error())
}

// Histogram is a histogram a component owns; its methods do nothing on a
// nil *Histogram.
type Histogram struct{ h prometheus.Histogram }

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	if h != nil {
		h.h.Observe(v)
	}
}

// Histogram returns the histogram name{labels} with buckets (nil: the
// Prometheus defaults, 5ms to 10s), registering it on first use; on a nil
// *Metrics it returns nil (a no-op histogram).
func (m *Metrics) Histogram(name, help string, labels prometheus.Labels, buckets []float64) *Histogram {
	if m == nil {
		return nil
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: labels, Buckets: buckets})
	return &Histogram{register(m, h).(prometheus.Histogram)}
}
