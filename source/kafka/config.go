package kafka

import (
	"context"
	"errors"
	"fmt"
	"github.com/rowsync/rowsync/internal/secret"
	"regexp"
	"strings"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/kafkaauth"
	"github.com/rowsync/rowsync/internal/tlsconf"
	"github.com/rowsync/rowsync/source/decode"
)

// Name is the Kafka source's key under source: in the config file, and its
// label in logs.
const Name = "kafka"

// Config configures the Kafka source. The zero value of every optional
// field means its default.
type Config struct {
	// Brokers are the bootstrap broker addresses ("host:port"). Required.
	Brokers []string `yaml:"brokers"`
	// Topics to consume. Exactly one of Topics and TopicRegex is required.
	Topics []string `yaml:"topics"`
	// TopicRegex selects topics by name (anchored: it must match the whole
	// name; internal topics starting with "__" never match). The topics are
	// resolved when the source starts; topics created later are not seen
	// until a restart.
	TopicRegex string `yaml:"topic_regex"`
	// Group is the consumer group ID. Default: rowsync
	Group string `yaml:"group"`
	// Format names the message decoder (canal-json, maxwell, ...). The
	// source only carries it; the caller resolves it to a decoder.
	Format string `yaml:"format"`
	// Limits bound one message (max_message_bytes, default 16 MiB;
	// max_rows, default 10000); a message over them goes to the dead letter.
	Limits decode.Limits `yaml:",inline"`
	// Settings: time_zone (the zone canal printed TIMESTAMP text in;
	// default UTC) and debezium: {decimal_handling_mode,
	// time_precision_mode, binary_handling_mode} (the connector's modes;
	// default its defaults).
	Settings decode.Settings `yaml:",inline"`
	// Start is where a group without a committed offset for a partition
	// begins: earliest or latest. Default: earliest
	Start string `yaml:"start"`
	// BatchSize is the most messages one Next returns. Default: 4096
	BatchSize int `yaml:"batch_size"`
	// MaxWait is how long Next waits to fill a batch after the first
	// message arrived. Default: 20ms
	MaxWait time.Duration `yaml:"max_wait"`
	// ReadAhead is the most messages the partition fetchers together hold
	// decoded and not yet taken by Next; a fetcher that finds it reached
	// hands over what it has decoded and waits. Next takes messages as
	// they come, so a batch still fills to batch_size while the fetchers
	// decode in parallel. It bounds the source's memory however many
	// partitions are assigned (each fetcher used to queue up to batch_size
	// messages of its own). Default: batch_size / 4
	ReadAhead int `yaml:"read_ahead"`
	// FetchMaxBytes is the most bytes one fetch request asks for per
	// partition. Default: 4MiB
	FetchMaxBytes int `yaml:"fetch_max_bytes"`
	// FetchMaxWait is how long the broker may hold a fetch when it has no
	// data (long poll). Default: 500ms
	FetchMaxWait time.Duration `yaml:"fetch_max_wait"`
	// CommitInterval is how often acked offsets are committed. Offsets are
	// also committed when partitions are revoked and at Close. Default: 1s
	CommitInterval time.Duration `yaml:"commit_interval"`
	// SessionTimeout is how long the coordinator waits for a heartbeat
	// before it evicts this member. Default: 30s
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// HeartbeatInterval is how often the member heartbeats; a rebalance is
	// noticed at the next heartbeat. Default: 3s
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// RebalanceTimeout is how long the coordinator waits for members to
	// rejoin during a rebalance. Default: 30s
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// RevokeTimeout is how long, when partitions are revoked, the source
	// waits for batches already handed out to be acked before it commits
	// and gives the partitions up. No heartbeats go out meanwhile, so it
	// must be below rebalance_timeout and session_timeout.
	// Default: 10s, or half the smaller of those if that is less
	RevokeTimeout time.Duration `yaml:"revoke_timeout"`
	// DialTimeout bounds connecting to a broker. Default: 10s
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ClientID is sent to the brokers. Default: rowsync
	ClientID string `yaml:"client_id"`
	// SASL authentication; off unless mechanism is set.
	SASL SASLConfig `yaml:"sasl"`
	// TLS for broker connections; off unless enabled.
	TLS TLSConfig `yaml:"tls"`
}

// SASLConfig configures SASL authentication (the sasl: block the Kafka
// dead letter and `rowsync check` share).
type SASLConfig = kafkaauth.SASL

// TLSConfig configures TLS to the brokers.
type TLSConfig = tlsconf.Config

// Defaults.
const (
	DefaultGroup             = "rowsync"
	DefaultBatchSize         = 4096
	DefaultMaxWait           = 20 * time.Millisecond
	DefaultFetchMaxBytes     = 4 << 20
	DefaultFetchMaxWait      = 500 * time.Millisecond
	DefaultCommitInterval    = time.Second
	DefaultSessionTimeout    = 30 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultRebalanceTimeout  = 30 * time.Second
	DefaultRevokeTimeout     = 10 * time.Second
	DefaultDialTimeout       = 10 * time.Second
	DefaultClientID          = "rowsync"
)

// withDefaults returns c with every zero optional field set.
func (c Config) withDefaults() Config {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Start == "" {
		c.Start = "earliest"
	}
	c.Start = strings.ToLower(c.Start)
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = max(1, c.BatchSize/4)
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = DefaultFetchMaxWait
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = DefaultRebalanceTimeout
	}
	if c.RevokeTimeout == 0 {
		c.RevokeTimeout = min(DefaultRevokeTimeout, c.RebalanceTimeout/2, c.SessionTimeout/2)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	return c
}

// Secrets returns the SASL password and the content of its password_file,
// for masking in what rowsync prints.
func (c Config) Secrets() []string {
	return append([]string{c.SASL.Password}, secret.File(c.SASL.PasswordFile)...)
}

// Validate reports every problem in c, each prefixed with its key path.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Settings.Validate(); err != nil {
		errs = append(errs, err)
	}

	if len(c.Brokers) == 0 {
		bad("brokers: required")
	}
	for i, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			bad("brokers[%d]: empty", i)
		} else if !strings.Contains(b, ":") {
			bad("brokers[%d]: %q has no port", i, b)
		}
	}
	switch {
	case len(c.Topics) == 0 && c.TopicRegex == "":
		bad("topics: one of topics or topic_regex is required")
	case len(c.Topics) > 0 && c.TopicRegex != "":
		bad("topic_regex: set either topics or topic_regex, not both")
	}
	for i, t := range c.Topics {
		if strings.TrimSpace(t) == "" {
			bad("topics[%d]: empty", i)
		}
	}
	if c.TopicRegex != "" {
		if _, err := compileTopicRegex(c.TopicRegex); err != nil {
			bad("topic_regex: %v", err)
		}
	}
	switch strings.ToLower(c.Start) {
	case "", "earliest", "latest":
	default:
		bad("start: %q is not earliest or latest", c.Start)
	}
	if c.BatchSize < 0 {
		bad("batch_size: must not be negative")
	}
	if c.ReadAhead < 0 {
		bad("read_ahead: must not be negative")
	}
	if c.FetchMaxBytes < 0 {
		bad("fetch_max_bytes: must not be negative")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"max_wait", c.MaxWait}, {"fetch_max_wait", c.FetchMaxWait},
		{"commit_interval", c.CommitInterval}, {"session_timeout", c.SessionTimeout},
		{"heartbeat_interval", c.HeartbeatInterval}, {"rebalance_timeout", c.RebalanceTimeout},
		{"revoke_timeout", c.RevokeTimeout}, {"dial_timeout", c.DialTimeout},
	} {
		if d.v < 0 {
			bad("%s: must not be negative", d.key)
		}
	}
	if d := c.withDefaults(); d.HeartbeatInterval >= d.SessionTimeout {
		bad("heartbeat_interval: %v must be below session_timeout %v", d.HeartbeatInterval, d.SessionTimeout)
	}
	// No heartbeats go out while revoked partitions drain, so the drain
	// must end well within both timeouts or the member is evicted.
	if d := c.withDefaults(); d.RevokeTimeout >= min(d.RebalanceTimeout, d.SessionTimeout) {
		bad("revoke_timeout: %v must be below rebalance_timeout %v and session_timeout %v", d.RevokeTimeout, d.RebalanceTimeout, d.SessionTimeout)
	}
	errs = append(errs, c.SASL.Validate("sasl.")...)
	errs = append(errs, c.TLS.Validate("tls.")...)
	return errors.Join(errs...)
}

func compileTopicRegex(pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return nil, fmt.Errorf("bad regex %q: %w", pattern, err)
	}
	return re, nil
}

// Check is the source's connection test for `rowsync check`: the brokers
// answer a metadata request with the configured TLS and SASL.
func (c Config) Check(key string) (string, cdc.Pinger) {
	return key + " " + strings.Join(c.Brokers, ","), cdc.PingFunc(func(ctx context.Context) error {
		return kafkaauth.Ping(ctx, c.Brokers, c.SASL, c.TLS)
	})
}

// Cleartext lists where the SASL PLAIN password would travel in clear.
func (c Config) Cleartext() []secret.Cleartext {
	return kafkaauth.Cleartext(".sasl", c.Brokers, c.SASL, c.TLS)
}
