package mysqlmeta

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// binlogSettings are the server variables a row-based binlog tap needs,
// in the order problems are reported.
var binlogSettings = []struct{ name, want, why string }{
	{"log_bin", "ON", "the server writes no binlog"},
	{"binlog_format", "ROW", "statement events carry no row images"},
}

// BinlogNeeds says what a binlog tap can live with beyond the defaults.
type BinlogNeeds struct {
	// PartialImages: every table the tap maps is read again by key
	// (refetch), so row images may lack columns (binlog_row_image MINIMAL
	// or NOBLOB, partial JSON updates without the previous document).
	PartialImages bool
}

// CheckBinlog reads the server settings a binlog tap needs and returns
// every problem at once in one error, each naming the variable, its value
// and the value needed; nil means the server is ready. An error reading a
// setting is returned as is: the server could not be asked.
func CheckBinlog(ctx context.Context, q Querier) error {
	return CheckBinlogFor(ctx, q, BinlogNeeds{})
}

// CheckBinlogFor is CheckBinlog for a tap with needs. Besides log_bin and
// binlog_format it reads binlog_row_image (FULL, or MINIMAL/NOBLOB when
// images may be partial) and MySQL 8's binlog_row_value_options
// (PARTIAL_JSON only where the previous document is in the event or the
// row is read again).
func CheckBinlogFor(ctx context.Context, q Querier, needs BinlogNeeds) error {
	var problems []string
	for _, s := range binlogSettings {
		v, err := globalVariable(ctx, q, s.name)
		if err != nil {
			return err
		}
		if !strings.EqualFold(v, s.want) {
			problems = append(problems, fmt.Sprintf("%s=%s (need %s: %s)", s.name, v, s.want, s.why))
		}
	}
	image, err := globalVariable(ctx, q, "binlog_row_image")
	if err != nil {
		return err
	}
	full := strings.EqualFold(image, "FULL")
	switch {
	case full:
	case needs.PartialImages && (strings.EqualFold(image, "MINIMAL") || strings.EqualFold(image, "NOBLOB")):
	case needs.PartialImages:
		problems = append(problems, fmt.Sprintf("binlog_row_image=%s (need FULL, MINIMAL or NOBLOB)", image))
	default:
		problems = append(problems, fmt.Sprintf("binlog_row_image=%s (need FULL: updates and deletes would lack the "+
			"columns outside the key; MINIMAL or NOBLOB only when every mapped table has refetch: true)", image))
	}
	// MySQL 8.0+ only; MariaDB has no such variable and reads as ""
	opts, err := globalVariable(ctx, q, "binlog_row_value_options")
	if err != nil {
		return err
	}
	if strings.Contains(strings.ToUpper(opts), "PARTIAL_JSON") && !full && !needs.PartialImages {
		problems = append(problems, fmt.Sprintf("binlog_row_value_options=%s (need '' with binlog_row_image=%s: a partial "+
			"JSON update carries only the changed paths and the event lacks the previous document; or refetch: true "+
			"for every mapped table)", opts, image))
	}
	if len(problems) > 0 {
		return fmt.Errorf("server not ready for a binlog tap: %s", strings.Join(problems, "; "))
	}
	return nil
}

// globalVariable returns a global server variable's value; a variable the
// server does not have reads as "" (so it is reported as wrong, not as a
// failure to ask).
func globalVariable(ctx context.Context, q Querier, name string) (string, error) {
	// name is one of ours, never input; no placeholder so that servers
	// without prepared statements (replication stand-ins) answer too
	rows, err := q.QueryContext(ctx, "SHOW GLOBAL VARIABLES WHERE Variable_name = '"+name+"'")
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	defer rows.Close()
	var n, v string
	for rows.Next() {
		if err := rows.Scan(&n, &v); err != nil {
			return "", fmt.Errorf("read %s: %w", name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return v, nil
}

// BinlogStatus returns the server's binlog end now: the file, the offset
// and (MySQL) the executed GTID set. It asks SHOW MASTER STATUS, and SHOW
// BINARY LOG STATUS where MySQL 8.4 removed the former. ok is false when
// the server writes no binlog.
func BinlogStatus(ctx context.Context, q Querier) (file string, offset uint64, gtid string, ok bool, err error) {
	rows, err := q.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		rows, err = q.QueryContext(ctx, "SHOW BINARY LOG STATUS")
	}
	if err != nil {
		return "", 0, "", false, fmt.Errorf("binlog status: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", 0, "", false, fmt.Errorf("binlog status: %w", err)
	}
	if !rows.Next() {
		return "", 0, "", false, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil || len(vals) < 2 {
		return "", 0, "", false, fmt.Errorf("binlog status: %v", err)
	}
	offset, err = strconv.ParseUint(vals[1].String, 10, 64)
	if err != nil {
		return "", 0, "", false, fmt.Errorf("binlog status: position %q: %w", vals[1].String, err)
	}
	for i, c := range cols {
		if strings.EqualFold(c, "Executed_Gtid_Set") {
			gtid = strings.ReplaceAll(strings.TrimSpace(vals[i].String), "\n", "")
		}
	}
	return vals[0].String, offset, gtid, vals[0].String != "", rows.Err()
}
