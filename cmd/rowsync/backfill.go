package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/rowsync/rowsync/backfill"
	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/mysqlmeta"
	"github.com/rowsync/rowsync/refetch"
)

const backfillHelp = `usage: rowsync backfill -c FILE [--chunk N] [--wait] TABLE...
       rowsync backfill -c FILE --status
       rowsync backfill -c FILE --cancel TABLE [--wait]

Asks the running 'rowsync run' of the same pipeline (the config's name:)
to copy the rows that already exist in these MySQL tables into its sinks
while it keeps streaming. The pipeline's owner reads each table in
primary-key order, a chunk at a time, between a low and a high watermark
of the log, so a row the log changes meanwhile keeps the log's version.
A backfill resumes from its last chunk after a restart or a lease
handover. With no 'rowsync run' running, the request waits for one.

TABLE is an exact "db.table" or a regex over "db.table" anchored at both
ends ('shop\..*'). It selects base tables in MySQL (mysql.dsn if set,
else the binlog source's server) that a tables[] entry streams into a
sink. A name that selects nothing, or a table without a primary key, is
an error naming it, and nothing is requested. A table whose backfill is
already requested or running keeps it (--wait follows that one).

--wait follows the backfills until each ends: a progress bar when stderr
is a terminal, else a progress line per table every few seconds. Exit 0
when all are done, 1 when one failed or was cancelled (it says why).
Ctrl-C stops the waiting, not the backfill.

--status prints every backfill of the pipeline: table, status, rows done /
estimated (information_schema's estimate), the chunk cursor (primary key
of the last applied row), rate, started, finished, and a failure's error.

--cancel asks the owner to stop the table's active backfill (exit 1 when
it has none). The state is kept beside the checkpoint: the Redis hash
<checkpoint prefix><name>:backfill, or the file <checkpoint.file>.backfill.json.

Flags:
`

// backfillFlags are the command line of `rowsync backfill`.
type backfillFlags struct {
	chunk  int
	wait   bool
	status bool
	cancel string
	tables []string
}

// backfillValued names the flags of backfill that take a value, so that
// flags may follow the table names.
var backfillValued = map[string]bool{"c": true, "config": true, "chunk": true, "cancel": true}

func cmdBackfill(args []string, stdout, stderr io.Writer) int {
	var fl backfillFlags
	flagArgs, tables := splitPositional(args, backfillValued)
	fl.tables = tables
	cfg, _, code := loadConfig("backfill", flagArgs, stderr, func(fs *flag.FlagSet) {
		fs.IntVar(&fl.chunk, "chunk", 0, fmt.Sprintf("rows per chunk query, at most %d (default: the pipeline's)", refetch.MaxChunkSize))
		fs.BoolVar(&fl.wait, "wait", false, "follow the backfills until they end; exit 1 if one fails or is cancelled")
		fs.BoolVar(&fl.status, "status", false, "print every backfill of the pipeline")
		fs.StringVar(&fl.cancel, "cancel", "", `ask the pipeline to stop the backfill of this table ("db.table")`)
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), backfillHelp)
			fs.PrintDefaults()
		}
	})
	if cfg == nil {
		return code
	}
	if err := fl.validate(); err != nil {
		fmt.Fprintf(stderr, "rowsync backfill: %v\n", err)
		return exitConfig
	}
	var rc refetch.Config
	if len(fl.tables) > 0 {
		var err error
		if rc, err = snapshotMySQL(cfg); err != nil {
			fmt.Fprintf(stderr, "rowsync backfill: %v\n", err)
			return exitConfig
		}
	}
	log := scrubbedLogger(cfg, stderr)
	d, err := newDeps(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync backfill: %v\n", err)
		return exitConfig
	}
	defer d.close()
	store, err := backfillStore(d)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync backfill: %v\n", err)
		return exitConfig
	}
	defer store.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := backfillCmd{cfg: cfg, store: store, stdout: stdout, stderr: stderr}
	switch {
	case fl.status:
		return b.status(ctx)
	case fl.cancel != "":
		return b.cancel(ctx, fl)
	}
	return b.request(ctx, fl, rc)
}

// validate checks the command line before anything connects.
func (fl backfillFlags) validate() error {
	var errs []error
	switch {
	case fl.status && (fl.cancel != "" || len(fl.tables) > 0 || fl.wait):
		errs = append(errs, errors.New("--status takes no table, --cancel or --wait"))
	case fl.cancel != "" && len(fl.tables) > 0:
		errs = append(errs, errors.New("--cancel takes one table: name no other"))
	case !fl.status && fl.cancel == "" && len(fl.tables) == 0:
		errs = append(errs, errors.New("name the tables to backfill (db.table or a regex), or pass --status or --cancel TABLE"))
	}
	if fl.chunk < 0 || fl.chunk > refetch.MaxChunkSize {
		errs = append(errs, fmt.Errorf("--chunk: must be between 1 and %d (0: the pipeline's default), got %d", refetch.MaxChunkSize, fl.chunk))
	}
	for _, t := range fl.tables {
		if _, err := cdc.CompileMatch(t); err != nil {
			errs = append(errs, fmt.Errorf("table %s", err))
		}
	}
	return errors.Join(errs...)
}

// splitPositional separates the positional arguments from the flags (and
// their values, for the flags named in valued) wherever they stand; all
// after "--" are positional.
func splitPositional(args []string, valued map[string]bool) (flags, positional []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flags, append(positional, args[i+1:]...)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && valued[name] && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	return flags, positional
}

// backfillCmd is one run of `rowsync backfill`.
type backfillCmd struct {
	cfg            *config.Config
	store          backfill.Store
	stdout, stderr io.Writer
}

// quickTimeout bounds what the command does before it waits.
const quickTimeout = time.Minute

// request resolves the tables, requests their backfills and, with --wait,
// follows them.
func (b backfillCmd) request(ctx context.Context, fl backfillFlags, rc refetch.Config) int {
	qctx, cancel := context.WithTimeout(ctx, quickTimeout)
	defer cancel()
	tables, err := b.resolve(qctx, rc, fl.tables)
	var sel *backfill.SelectionError
	if errors.As(err, &sel) {
		fmt.Fprintln(b.stderr, "rowsync backfill: nothing requested:")
		for _, p := range sel.Problems {
			fmt.Fprintf(b.stderr, "  %s\n", p)
		}
		return exitConfig
	}
	if err != nil {
		fmt.Fprintf(b.stderr, "rowsync backfill: %v\n", err)
		return exitFail
	}
	subs, err := backfill.RequestTables(qctx, b.store, tables, fl.chunk, time.Now())
	var follow []backfill.State
	for _, s := range subs {
		follow = append(follow, s.State)
		if s.Already {
			fmt.Fprintf(b.stdout, "%s: a backfill is already %s (id %s): kept\n", s.State.Name(), s.State.Status, s.State.ID)
		} else {
			fmt.Fprintf(b.stdout, "%s: backfill requested (id %s)\n", s.State.Name(), s.State.ID)
		}
	}
	if err != nil {
		fmt.Fprintf(b.stderr, "rowsync backfill: %v\n", err)
		return exitFail
	}
	b.ownerNote(qctx, true, "the request waits for it")
	if !fl.wait {
		return exitOK
	}
	return b.wait(ctx, follow)
}

// resolve picks the tables names select among MySQL's base tables that
// the pipeline streams into a sink.
func (b backfillCmd) resolve(ctx context.Context, rc refetch.Config, names []string) ([][2]string, error) {
	db, err := sql.Open("mysql", rc.DSN)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	defer db.Close()
	include, err := sourceFilter(b.cfg)
	if err != nil {
		return nil, err
	}
	router := b.cfg.Router()
	return backfill.Resolve(ctx, mysqlmeta.NewCatalog(db), names, func(d, t string) bool {
		_, e := router.Entry(d, t)
		return e != nil && len(e.Sinks) > 0 && include.Match(d, t)
	})
}

// ownerNote says when no 'rowsync run' of the pipeline beats (and what
// waits for one); with always, it also names the one that does.
func (b backfillCmd) ownerNote(ctx context.Context, always bool, waits string) {
	owner, at, err := b.store.Owner(ctx)
	if err != nil {
		fmt.Fprintf(b.stderr, "rowsync backfill: %v\n", err)
		return
	}
	now := time.Now()
	if always || !backfill.OwnerRunning(owner, at, now) {
		fmt.Fprintln(b.stdout, backfill.OwnerLine(b.cfg.Name, owner, at, now, waits))
	}
}

// status prints every backfill of the pipeline.
func (b backfillCmd) status(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, quickTimeout)
	defer cancel()
	states, err := b.store.List(ctx)
	if err != nil {
		fmt.Fprintf(b.stderr, "rowsync backfill: %v\n", err)
		return exitFail
	}
	b.ownerNote(ctx, true, "requests wait for it")
	if len(states) == 0 {
		fmt.Fprintf(b.stdout, "no backfill of pipeline %s\n", b.cfg.Name)
		return exitOK
	}
	if err := backfill.WriteStatus(b.stdout, states); err != nil {
		fmt.Fprintf(b.stderr, "rowsync backfill: %v\n", err)
		return exitFail
	}
	return exitOK
}

// cancel asks the owner to stop one table's backfill.
func (b backfillCmd) cancel(ctx context.Context, fl backfillFlags) int {
	qctx, cancel := context.WithTimeout(ctx, quickTimeout)
	defer cancel()
	st, ok, err := backfill.CancelTable(qctx, b.store, fl.cancel)
	if err != nil {
		fmt.Fprintf(b.stderr, "rowsync backfill: %v\n", err)
		return exitFail
	}
	if !ok {
		fmt.Fprintf(b.stdout, "%s: no active backfill\n", fl.cancel)
		return exitFail
	}
	fmt.Fprintf(b.stdout, "%s: cancel requested (id %s)\n", st.Name(), st.ID)
	b.ownerNote(qctx, false, "the cancel waits for it")
	if !fl.wait {
		return exitOK
	}
	return b.wait(ctx, []backfill.State{st})
}

// Polling of --wait: the store is read every waitPoll; plain progress
// lines are printed every waitLines.
var (
	waitPoll  = time.Second
	waitLines = 5 * time.Second
)

// wait follows states to their end and prints the outcome.
func (b backfillCmd) wait(ctx context.Context, states []backfill.State) int {
	show := b.display()
	lastOwnerCheck := time.Now()
	final, err := backfill.Wait(ctx, b.store, states, waitPoll, func(cur []backfill.State, err error) {
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(b.stderr, "rowsync backfill: %v (retrying)\n", err)
			}
			return
		}
		show(cur, false)
		if time.Since(lastOwnerCheck) >= backfill.OwnerTimeout {
			lastOwnerCheck = time.Now()
			b.ownerNote(ctx, false, "the backfills wait for it")
		}
	})
	show(final, true)
	if err != nil {
		fmt.Fprintf(b.stdout, "stopped waiting; the backfills go on ('rowsync backfill -c FILE --status' shows them)\n")
		return exitFail
	}
	code := exitOK
	for _, st := range final {
		switch st.Status {
		case backfill.Done:
			fmt.Fprintf(b.stdout, "%s: done, %d rows\n", st.Name(), st.Rows)
		case backfill.Cancelled:
			fmt.Fprintf(b.stdout, "%s: cancelled after %d rows\n", st.Name(), st.Rows)
			code = exitFail
		default:
			fmt.Fprintf(b.stdout, "%s: %s: %s\n", st.Name(), st.Status, st.Error)
			code = exitFail
		}
	}
	return code
}

// display shows the progress of backfills (snapshot's too): a bar when
// stderr is a terminal, else progress lines.
func (b backfillCmd) display() func([]backfill.State, bool) {
	if f, ok := b.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return b.progressBar()
	}
	return b.progressLines()
}

// progressLines prints each table's progress line every waitLines while
// it changes.
func (b backfillCmd) progressLines() func([]backfill.State, bool) {
	var last time.Time
	printed := map[string]string{}
	return func(cur []backfill.State, end bool) {
		if end || time.Since(last) < waitLines {
			return
		}
		last = time.Now()
		for _, st := range cur {
			if line := backfill.ProgressLine(st); printed[st.Name()] != line {
				printed[st.Name()] = line
				fmt.Fprintln(b.stdout, line)
			}
		}
	}
}

// progressBar draws one bar on stderr over all tables: rows done of the
// summed estimates.
func (b backfillCmd) progressBar() func([]backfill.State, bool) {
	bar := progressbar.NewOptions64(1,
		progressbar.OptionSetWriter(b.stderr), progressbar.OptionSetDescription("backfill"),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(), progressbar.OptionClearOnFinish())
	return func(cur []backfill.State, end bool) {
		var rows, estimate int64
		var done int
		var current string
		for _, st := range cur {
			rows += st.Rows
			estimate += max(st.Estimate, st.Rows)
			if !st.Status.Active() {
				done++
			} else if current == "" && st.Status == backfill.Running {
				current = st.Name()
			}
		}
		if estimate != bar.GetMax64() {
			bar.ChangeMax64(max(estimate, 1))
		}
		bar.Describe(fmt.Sprintf("[%d/%d] %s", done, len(cur), current))
		bar.Set64(rows)
		if end {
			bar.Finish()
		}
	}
}
