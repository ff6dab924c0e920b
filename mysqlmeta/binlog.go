package mysqlmeta

import (
	"context"
	"fmt"
	"strings"
)

// binlogSettings are the server variables a row-based binlog tap needs,
// in the order problems are reported.
var binlogSettings = []struct{ name, want, why string }{
	{"log_bin", "ON", "the server writes no binlog"},
	{"binlog_format", "ROW", "statement events carry no row images"},
	{"binlog_row_image", "FULL", "updates and deletes would lack the columns outside the key"},
}

// CheckBinlog reads the server settings a binlog tap needs and returns
// every problem at once in one error, each naming the variable, its value
// and the value needed; nil means the server is ready. An error reading a
// setting is returned as is: the server could not be asked.
func CheckBinlog(ctx context.Context, q Querier) error {
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
