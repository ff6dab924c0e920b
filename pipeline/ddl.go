package pipeline

import (
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/metrics"
)

// DDLReport is what the sources do with the schema changes they meet
// (their OnDDL): a statement that names a table the pipeline routes is
// logged; one that removes the table's rows (TRUNCATE, DROP TABLE, DROP
// DATABASE) is logged as a warning and counted in
// rowsync_ddl_clears_total{table}, because no row event follows it and
// the sinks keep the rows MySQL no longer has — nothing is skipped
// silently. Other statements are logged at debug level. Safe for
// concurrent use.
type DDLReport struct {
	// Match reports whether the pipeline routes db.table to a sink.
	Match func(db, table string) bool
	// MatchDB reports whether the pipeline may route some table of db
	// (for DROP DATABASE, which names no table). Default: every db.
	MatchDB func(db string) bool
	// Logger may be nil.
	Logger *slog.Logger

	m atomic.Pointer[metrics.Metrics]
}

var _ metrics.Instrumented = (*DDLReport)(nil)

// Instrument registers the counter on m.
func (r *DDLReport) Instrument(m *metrics.Metrics) { r.m.Store(m) }

// OnDDL reports d.
func (r *DDLReport) OnDDL(d cdc.DDL) {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var routed [][2]string
	for _, t := range d.Tables() {
		if r.Match == nil || r.Match(t[0], t[1]) {
			routed = append(routed, t)
		}
	}
	if d.Table == "" && d.Clears() && d.DB != "" && (r.MatchDB == nil || r.MatchDB(d.DB)) {
		// DROP DATABASE: every routed table of it; which ones is not known here
		log.Warn("schema change removes every table of a database; if the pipeline routes any of them, the sinks keep their rows "+
			"('rowsync verify --repair' removes them)",
			"db", d.DB, "type", d.Type, "sql", d.SQL, "pos", d.Pos.Text)
		r.m.Load().Counter("rowsync_ddl_clears_total", "Statements (TRUNCATE, DROP) that removed the rows of a routed table or database; the sinks keep those rows.",
			prometheus.Labels{"table": d.DB + ".*"}).Inc()
		return
	}
	if len(routed) == 0 {
		log.Debug("schema change", "db", d.DB, "table", d.Table, "type", d.Type, "pos", d.Pos.Text)
		return
	}
	for _, t := range routed {
		name := t[0] + "." + t[1]
		if d.Clears() {
			log.Warn("schema change removes every row of a routed table; no row event follows and the sinks keep its rows "+
				"('rowsync verify --repair' removes them, 'rowsync backfill' reloads the table)",
				"table", name, "type", d.Type, "sql", d.SQL, "pos", d.Pos.Text)
			r.m.Load().Counter("rowsync_ddl_clears_total", "Statements (TRUNCATE, DROP) that removed the rows of a routed table or database; the sinks keep those rows.",
				prometheus.Labels{"table": name}).Inc()
			continue
		}
		log.Info("schema change of a routed table", "table", name, "type", d.Type, "sql", d.SQL, "pos", d.Pos.Text)
	}
}
