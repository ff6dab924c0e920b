// Package metrics defines rowsync's Prometheus metrics, named
// rowsync_<component>_<what>_<unit>. One Metrics value is registered per
// process on its own registry, so tests can build several.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector rowsync updates.
type Metrics struct {
	Registry *prometheus.Registry

	Events        *prometheus.CounterVec   // rowsync_events_total{pipeline,table,op}
	ApplyDuration *prometheus.HistogramVec // rowsync_apply_duration_seconds{sink}
	Lag           *prometheus.GaugeVec     // rowsync_source_lag_seconds{pipeline}
	Errors        *prometheus.CounterVec   // rowsync_errors_total{sink,class}
	DeadLetters   *prometheus.CounterVec   // rowsync_deadletter_total{stage}
	InFlight      *prometheus.GaugeVec     // rowsync_pipeline_inflight_batches{pipeline}
	LastAck       *prometheus.GaugeVec     // rowsync_pipeline_last_ack_timestamp_seconds{pipeline}
}

// New creates and registers the collectors plus the Go and process ones.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowsync_events_total", Help: "Row changes applied (or dead-lettered), by table and op.",
		}, []string{"pipeline", "table", "op"}),
		ApplyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rowsync_apply_duration_seconds", Help: "Time one sink Apply call took, retries excluded.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"sink"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rowsync_source_lag_seconds", Help: "Now minus the commit time of the newest acked change.",
		}, []string{"pipeline"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowsync_errors_total", Help: "Errors by sink and class (transient: retried; permanent: dead-lettered).",
		}, []string{"sink", "class"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowsync_deadletter_total", Help: "Records written to the dead letter, by stage (decode or sink name).",
		}, []string{"stage"}),
		InFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rowsync_pipeline_inflight_batches", Help: "Batches taken from the source and not yet acked.",
		}, []string{"pipeline"}),
		LastAck: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rowsync_pipeline_last_ack_timestamp_seconds", Help: "Unix time of the last source ack (checkpoint).",
		}, []string{"pipeline"}),
	}
	m.Registry.MustRegister(m.Events, m.ApplyDuration, m.Lag, m.Errors, m.DeadLetters, m.InFlight, m.LastAck,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
