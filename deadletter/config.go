package deadletter

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/config"
	"github.com/rowsync/rowsync/internal/filecheck"
	"github.com/rowsync/rowsync/internal/kafkaauth"
	"github.com/rowsync/rowsync/internal/secret"
)

// Config says where dead letters go: a file (the default) or a Kafka
// topic. For RabbitMQ sources, rabbitmq.reject_to_dlx routes undecodable
// messages to the queue's dead-letter exchange instead. The zero value of
// each field means its default.
type Config struct {
	// File is a JSON-lines file, created with mode 0600.
	// Default: ./deadletter.jsonl
	File string `yaml:"file"`
	// MaxBytes rotates the file once it grows past this size: it is renamed
	// FILE.1 (FILE.1 becomes FILE.2, and so on) and a new FILE is started.
	// Default: 100 MiB
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxFiles is how many rotated files are kept; older ones are deleted,
	// so the dead letter takes at most about (max_files+1) × max_bytes of
	// disk. Default: 5
	MaxFiles int `yaml:"max_files"`
	// Kafka sends records to a topic instead of the file.
	Kafka *KafkaConfig `yaml:"kafka"`
	// ExcludedColumns says what happens to the columns a table's rule keeps
	// out of its sinks (redis_hash / mongo exclude, or not in include) when
	// one of its changes is dead-lettered: omit leaves them out of the
	// record, redact keeps the column names with the value "[redacted]".
	// Default: omit
	ExcludedColumns string `yaml:"excluded_columns"`
}

// Defaults of Config.
const (
	DefaultFile     = "deadletter.jsonl"
	DefaultMaxBytes = 100 << 20
	DefaultMaxFiles = 5
)

// Validate reports every problem, each prefixed by its key.
func (c Config) Validate() error {
	var errs []error
	if c.Kafka != nil {
		if err := c.Kafka.Validate(); err != nil {
			errs = append(errs, config.Prefix("kafka", err))
		}
		if c.File != "" {
			errs = append(errs, errors.New("set file or kafka, not both"))
		}
	}
	if c.MaxBytes < 0 {
		errs = append(errs, errors.New("max_bytes: must not be negative"))
	}
	if c.MaxFiles < 0 {
		errs = append(errs, errors.New("max_files: must not be negative"))
	}
	if !slices.Contains([]string{"", "omit", "redact"}, c.ExcludedColumns) {
		errs = append(errs, fmt.Errorf("excluded_columns: unknown %q (want omit or redact)", c.ExcludedColumns))
	}
	return errors.Join(errs...)
}

// Secrets returns the Kafka dead letter's SASL password and the content of
// its password_file, for masking in what rowsync prints.
func (c Config) Secrets() []string {
	if c.Kafka == nil {
		return nil
	}
	return append([]string{c.Kafka.SASL.Password}, secret.File(c.Kafka.SASL.PasswordFile)...)
}

// Open returns the writer c describes.
func Open(c Config) (Writer, error) {
	if c.Kafka != nil {
		return NewKafka(*c.Kafka)
	}
	if c.File == "" {
		c.File = DefaultFile
	}
	return OpenFileConfig(c)
}

// Redacted is the value that stands in for a column under
// excluded_columns: redact.
const Redacted = "[redacted]"

// Renderer returns the event renderer for dead-letter records: render,
// applied to the event without the columns hidden(db, table) reports (nil:
// none), or with their values replaced by Redacted when mode is "redact".
// Primary-key columns are always kept: they say which row failed.
func Renderer(render func(cdc.Event) ([]byte, error), hidden func(db, table string) func(col string) bool,
	mode string) func(cdc.Event) ([]byte, error) {
	if hidden == nil {
		return render
	}
	return func(ev cdc.Event) ([]byte, error) {
		hide := hidden(ev.DB, ev.Table)
		if hide == nil {
			return render(ev)
		}
		keep := func(col string) bool { return !hide(col) || slices.Contains(ev.PK, col) }
		filter := func(row *cdc.Row) *cdc.Row {
			if row == nil {
				return nil
			}
			out := new(cdc.Row)
			for k, v := range row.All() {
				switch {
				case keep(k):
					out.Set(k, v)
				case mode == "redact":
					out.Set(k, Redacted)
				}
			}
			return out
		}
		ev.Before, ev.After = filter(ev.Before), filter(ev.After)
		if mode != "redact" {
			cols := make([]cdc.Column, 0, len(ev.Columns))
			for _, c := range ev.Columns {
				if keep(c.Name) {
					cols = append(cols, c)
				}
			}
			ev.Columns = cols
		} else {
			cols := slices.Clone(ev.Columns)
			for i := range cols {
				if !keep(cols[i].Name) {
					cols[i] = cdc.Column{Name: cols[i].Name, Kind: cdc.KindString, Precision: -1}
				}
			}
			ev.Columns = cols
		}
		return render(ev)
	}
}

// Check is the dead letter's connection test for `rowsync check`: the
// Kafka brokers answer with the configured TLS and SASL, or the file's
// directory is writable.
func (c Config) Check(key string) (string, cdc.Pinger) {
	if k := c.Kafka; k != nil {
		return key + ".kafka " + k.Topic, cdc.PingFunc(func(ctx context.Context) error {
			return kafkaauth.Ping(ctx, k.Brokers, k.SASL, k.TLS)
		})
	}
	path := c.File
	if path == "" {
		path = DefaultFile
	}
	return key + ".file " + path, cdc.PingFunc(func(context.Context) error {
		return filecheck.WritableDir(filepath.Dir(path))
	})
}

// Cleartext lists where the Kafka dead letter's SASL PLAIN password would
// travel in clear.
func (c Config) Cleartext() []secret.Cleartext {
	if c.Kafka == nil {
		return nil
	}
	return kafkaauth.Cleartext(".kafka.sasl", c.Kafka.Brokers, c.Kafka.SASL, c.Kafka.TLS)
}
