package backfill

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Rate returns rows per second over Started..Finished (Updated while it
// runs); false when there is no span to measure over yet.
func (s State) Rate() (float64, bool) {
	end := s.Finished
	if end.IsZero() {
		end = s.Updated
	}
	if s.Started.IsZero() || !end.After(s.Started) {
		return 0, false
	}
	return float64(s.Rows) / end.Sub(s.Started).Seconds(), true
}

// rowsText is "done/estimate" ("done/?" without an estimate) and the
// percentage.
func rowsText(s State) string {
	if s.Estimate <= 0 {
		return strconv.FormatInt(s.Rows, 10) + "/?"
	}
	return fmt.Sprintf("%d/%d (%d%%)", s.Rows, s.Estimate, s.Rows*100/s.Estimate)
}

// cursorMax bounds the cursor column; longer cursors end in "…".
const cursorMax = 32

func cursorText(s State) string {
	if len(s.Cursor) == 0 {
		return "-"
	}
	c := strings.Join(s.Cursor, ",")
	if r := []rune(c); len(r) > cursorMax {
		c = string(r[:cursorMax-1]) + "…"
	}
	return c
}

func rateText(s State) string {
	r, ok := s.Rate()
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(r, 'f', 0, 64) + "/s"
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// WriteStatus prints one line per state under a header, in columns:
// table, status, rows done/estimated (and %), chunk cursor, rate,
// started, finished, and the error of a failed one (last, as it is free
// text). Times are UTC, RFC 3339; "-" marks what is not known yet.
func WriteStatus(w io.Writer, states []State) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSTATUS\tROWS\tCURSOR\tRATE\tSTARTED\tFINISHED\tERROR")
	for _, s := range states {
		errText := "-"
		if s.Error != "" {
			errText = oneLine(s.Error)
		}
		if len(s.Keys) > 0 && s.Error == "" {
			errText = fmt.Sprintf("(%d keys)", len(s.Keys))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name(), s.Status, rowsText(s), cursorText(s),
			rateText(s), timeText(s.Started), timeText(s.Finished), errText)
	}
	return tw.Flush()
}

// ProgressLine is one line on a backfill's progress for a log or a
// terminal that is not one: "shop.users running 1200/5000 (24%) rows,
// 3 chunks, cursor 1200, 800/s".
func ProgressLine(s State) string {
	line := fmt.Sprintf("%s %s %s rows, %d chunks, cursor %s, %s", s.Name(), s.Status, rowsText(s), s.Chunks, cursorText(s), rateText(s))
	if s.Error != "" {
		line += ": " + oneLine(s.Error)
	}
	return line
}

// OwnerLine says who runs the pipeline called pipeline as of now, from
// its newest beat; when none does, "no 'rowsync run' of pipeline X is
// running" followed by ": " and waits.
func OwnerLine(pipeline, owner string, at, now time.Time, waits string) string {
	if OwnerRunning(owner, at, now) {
		return fmt.Sprintf("pipeline %s is run by %s (last beat %s ago)", pipeline, owner, now.Sub(at).Round(time.Second))
	}
	return fmt.Sprintf("no 'rowsync run' of pipeline %s is running: %s", pipeline, waits)
}

// Wait follows the backfills want (by table and ID) until each has ended,
// reading s every poll, and returns their last states. progress, if not
// nil, gets the followed states after each read, or the read's error (a
// failed read is retried at the next poll). A backfill whose state was
// removed, or replaced by a newer request before it was seen ending,
// ends as Failed with an Error saying so. Wait returns ctx's error when
// ctx ends first (the backfills go on).
func Wait(ctx context.Context, s Store, want []State, poll time.Duration, progress func([]State, error)) ([]State, error) {
	cur := append([]State(nil), want...)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		all, err := s.List(ctx)
		if err == nil {
			byName := make(map[string]State, len(all))
			for _, st := range all {
				byName[st.Name()] = st
			}
			for i, w := range cur {
				if !w.Status.Active() {
					continue
				}
				st, ok := byName[w.Name()]
				switch {
				case !ok:
					w.Status, w.Error = Failed, "its state was removed"
					cur[i] = w
				case st.ID != w.ID:
					w.Status, w.Error = Failed, fmt.Sprintf("replaced by a newer request (%s)", st.ID)
					cur[i] = w
				default:
					cur[i] = st
				}
			}
		}
		if progress != nil {
			progress(cur, err)
		}
		if err == nil && !anyActive(cur) {
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return cur, ctx.Err()
		case <-t.C:
		}
	}
}

func anyActive(states []State) bool {
	for _, s := range states {
		if s.Status.Active() {
			return true
		}
	}
	return false
}

// WriteSummary prints one line per state (rows, seconds from started to
// finished, rows/s, status and a failure's error) and a total line: what
// `rowsync snapshot` prints at its end.
func WriteSummary(w io.Writer, states []State) error {
	if len(states) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tSECONDS\tROWS/S\tSTATUS")
	var rows int64
	var secs float64
	for _, s := range states {
		d := 0.0
		if !s.Started.IsZero() && !s.Finished.IsZero() {
			d = s.Finished.Sub(s.Started).Seconds()
		}
		rate := "-"
		if r, ok := s.Rate(); ok {
			rate = strconv.FormatFloat(r, 'f', 0, 64)
		}
		status := string(s.Status)
		if s.Error != "" {
			status += ": " + oneLine(s.Error)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s\t%s\n", s.Name(), s.Rows, d, rate, status)
		rows += s.Rows
		secs += d
	}
	rate := "-"
	if secs > 0 {
		rate = strconv.FormatFloat(float64(rows)/secs, 'f', 0, 64)
	}
	fmt.Fprintf(tw, "total\t%d\t%.2f\t%s\n", rows, secs, rate)
	return tw.Flush()
}
