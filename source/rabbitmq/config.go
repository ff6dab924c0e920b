package rabbitmq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/backoff"
	"github.com/rowsync/rowsync/internal/secret"
	"github.com/rowsync/rowsync/internal/tlsconf"
	"github.com/rowsync/rowsync/source/decode"
)

// Defaults applied to zero Config fields.
const (
	DefaultBatchSize    = 1024
	DefaultMaxWait      = 20 * time.Millisecond
	DefaultHeartbeat    = 10 * time.Second
	DefaultDialTimeout  = 30 * time.Second
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 10 * time.Second

	// maxPrefetch is the largest prefetch count AMQP 0-9-1 can carry
	// (basic.qos prefetch-count is a short).
	maxPrefetch = 65535
	// MaxConsumers caps Config.Consumers.
	MaxConsumers = 64
)

// Name is the RabbitMQ source's key under source: in the config file, and its
// label in logs.
const Name = "rabbitmq"

// Config configures a Source. The zero value of every optional field means
// its default.
type Config struct {
	// URL of the broker, amqp:// or amqps://, with credentials and vhost:
	// amqp://guest:guest@127.0.0.1:5672/. Required.
	URL string `yaml:"url"`
	// URLFile names a file holding the URL instead (it carries the
	// password); read when the config is validated.
	URLFile string `yaml:"url_file"`
	// Queue to consume. Required.
	Queue string `yaml:"queue"`
	// Declare declares Queue as a durable queue (with the arguments below)
	// and binds it. When false the queue must already exist; it is checked
	// with a passive declare and a missing queue is a fatal error.
	// Default: false
	Declare bool `yaml:"declare"`
	// Exchange to bind Queue to when Declare is set. The exchange must exist.
	// Default: none (no binding)
	Exchange string `yaml:"exchange"`
	// RoutingKeys to bind Queue to Exchange with, one binding each.
	// Default: one binding with the empty key (fanout, headers exchanges).
	RoutingKeys []string `yaml:"routing_keys"`
	// SingleActiveConsumer declares the queue with x-single-active-consumer,
	// so only one rowsync instance consumes at a time and standby instances
	// take over in order. Needs Declare.
	// Default: false
	SingleActiveConsumer bool `yaml:"single_active_consumer"`
	// DeadLetterExchange declares the queue with x-dead-letter-exchange.
	// Needs Declare, except with RejectToDLX: then, for a queue declared
	// elsewhere, it names the exchange the queue's policy gives it.
	// Default: none
	DeadLetterExchange string `yaml:"dead_letter_exchange"`
	// RejectToDLX makes an undecodable message go to the queue's
	// dead-letter exchange (basic.nack with requeue=false, when its batch is
	// acked) instead of being handed to rowsync's dead letter as a
	// cdc.Reject. Needs DeadLetterExchange: without a dead-letter
	// exchange RabbitMQ drops the message.
	// Default: false
	RejectToDLX bool `yaml:"reject_to_dlx"`
	// Prefetch is the basic.qos prefetch count: how many unacked messages
	// the broker sends ahead. It bounds the source's in-flight window: the
	// pipeline holds up to pipeline.max_in_flight batches unacked (8 by
	// default), and with a smaller window the broker stops sending until
	// a batch is applied and acked, so receiving and applying take turns.
	// Default: 8 × BatchSize, at most 65535
	Prefetch int `yaml:"prefetch"`
	// BatchSize closes a batch at this many messages or this many events,
	// whichever comes first.
	// Default: 1024
	BatchSize int `yaml:"batch_size"`
	// MaxWait closes a non-empty batch this long after its first message.
	// Default: 20ms
	MaxWait time.Duration `yaml:"max_wait"`
	// Consumers is how many consumers read Queue at once, each on its own
	// connection and channel with its own Prefetch window. RabbitMQ keeps a
	// queue's order for one consumer only: with several it deals the
	// messages out round-robin, and a later change of a row can reach the
	// sinks before an earlier one. So more than one needs either a version
	// guard that lets no older change win (a format whose messages carry a
	// binlog position, not canal-json, and version_field on every
	// tables[] entry's redis_hash and mongo block; rowsync stops on a
	// message without a position), or Unordered. Checked when the config
	// is loaded.
	// Default: 1
	Consumers int `yaml:"consumers"`
	// Unordered accepts that with several Consumers two changes of one row
	// may be applied in the opposite order (the older one winning) when
	// the tables have no version guard.
	// Default: false
	Unordered bool `yaml:"unordered"`
	// Format names the message format (canal-json, maxwell, ...). The
	// source carries it; the caller builds the decoder from it.
	Format string `yaml:"format"`
	// Limits bound one message (max_message_bytes, default 16 MiB;
	// max_rows, default 10000); a message over them goes to the dead letter.
	Limits decode.Limits `yaml:",inline"`
	// Settings: time_zone (the zone canal printed TIMESTAMP text in;
	// default UTC) and debezium: {decimal_handling_mode,
	// time_precision_mode, binary_handling_mode} (the connector's modes;
	// default its defaults).
	Settings decode.Settings `yaml:",inline"`
	// ConsumerTag names the consumer on the broker.
	// Default: generated by the client library, unique per process.
	ConsumerTag string `yaml:"consumer_tag"`
	// ConnectionName is shown by the broker's management tools.
	// Default: "rowsync"
	ConnectionName string `yaml:"connection_name"`
	// Heartbeat is the AMQP heartbeat interval; a dead peer is detected
	// after about two missed heartbeats.
	// Default: 10s
	Heartbeat time.Duration `yaml:"heartbeat"`
	// DialTimeout bounds the TCP connect and the TLS and AMQP handshakes.
	// Default: 30s
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Reconnect is the backoff between reconnection attempts.
	Reconnect Backoff `yaml:"reconnect"`
	// TLS configures amqps:// connections.
	TLS TLS `yaml:"tls"`
}

// Backoff is a capped exponential backoff with jitter (internal/backoff):
// attempt n waits a random time between d/2 and d, where
// d = min(Min × 2^(n-1), Max).
type Backoff struct {
	// Min is the first delay.
	// Default: 100ms
	Min time.Duration `yaml:"min"`
	// Max caps the delay.
	// Default: 10s
	Max time.Duration `yaml:"max"`
}

// TLS is the shared tls: block (internal/tlsconf: ca_file, cert_file,
// key_file, server_name, insecure_skip_verify). An amqps:// URL turns TLS
// on (enabled is implied), and the block needs one; without any field set,
// amqps:// verifies the server against the system roots and the URL host.
type TLS = tlsconf.Config

// Secrets returns the password of the URL, for masking in what rowsync
// prints.
func (c Config) Secrets() []string { return secret.InValue(c.URL, c.URLFile, secret.URLPassword) }

// Validate reports every problem in c, each prefixed with its key path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if err := secret.FromFile(&c.URL, &c.URLFile, "url", "url_file"); err != nil {
		errs = append(errs, err)
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Settings.Validate(); err != nil {
		errs = append(errs, err)
	}
	var uri amqp.URI
	switch {
	case c.URL == "":
		bad("url", "required")
	default:
		u, err := amqp.ParseURI(c.URL)
		if err != nil {
			// the parser's error quotes the URL, password included
			bad("url", "%s", secret.Redact(err.Error()))
		}
		uri = u
	}
	if c.Queue == "" {
		bad("queue", "required")
	}
	if !c.Declare {
		if c.Exchange != "" {
			bad("exchange", "needs declare: true")
		}
		if c.SingleActiveConsumer {
			bad("single_active_consumer", "needs declare: true")
		}
		if c.DeadLetterExchange != "" && !c.RejectToDLX {
			bad("dead_letter_exchange", "needs declare: true")
		}
	}
	if c.RejectToDLX && c.DeadLetterExchange == "" {
		// RabbitMQ drops a rejected message when its queue has no
		// dead-letter exchange: make the operator name it.
		bad("reject_to_dlx", "needs dead_letter_exchange (declared with the queue, or the one a policy gives it): without one RabbitMQ drops rejected messages")
	}
	if len(c.RoutingKeys) > 0 && c.Exchange == "" {
		bad("routing_keys", "needs exchange")
	}
	if c.Prefetch < 0 || c.Prefetch > maxPrefetch {
		bad("prefetch", "must be between 0 and %d", maxPrefetch)
	}
	if c.BatchSize < 0 {
		bad("batch_size", "must not be negative")
	}
	if c.Consumers < 0 || c.Consumers > MaxConsumers {
		bad("consumers", "must be between 0 and %d", MaxConsumers)
	}
	if c.Consumers > 1 && c.SingleActiveConsumer {
		bad("consumers", "a single-active-consumer queue serves one consumer at a time: the others would only stand by")
	}
	if c.MaxWait < 0 {
		bad("max_wait", "must not be negative")
	}
	if c.Heartbeat < 0 {
		bad("heartbeat", "must not be negative")
	}
	if c.DialTimeout < 0 {
		bad("dial_timeout", "must not be negative")
	}
	if c.Reconnect.Min < 0 {
		bad("reconnect.min", "must not be negative")
	}
	if c.Reconnect.Max < 0 {
		bad("reconnect.max", "must not be negative")
	}
	if d := c.withDefaults(); d.Reconnect.Max < d.Reconnect.Min {
		bad("reconnect.max", "must not be below reconnect.min (%s)", d.Reconnect.Min)
	}
	if c.TLS != (TLS{}) && c.URL != "" && uri.Scheme != "amqps" {
		bad("tls", "needs an amqps:// url")
	}
	errs = append(errs, c.tls().Validate("tls.")...)
	return errors.Join(errs...)
}

// withDefaults returns c with every zero optional field set to its default.
func (c Config) withDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Consumers == 0 {
		c.Consumers = 1
	}
	if c.Prefetch == 0 {
		c.Prefetch = min(8*c.BatchSize, maxPrefetch)
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Reconnect.Min == 0 {
		c.Reconnect.Min = DefaultReconnectMin
	}
	if c.Reconnect.Max == 0 {
		c.Reconnect.Max = max(DefaultReconnectMax, c.Reconnect.Min)
	}
	if c.ConnectionName == "" {
		c.ConnectionName = "rowsync"
	}
	return c
}

// needsVersions reports whether several consumers rely on the sinks'
// version guard for per-row order: every event must carry a Version.
func (c Config) needsVersions() bool { return c.Consumers > 1 && !c.Unordered }

// OrderedConsumers reports whether c reads its queue with several
// consumers while keeping per-row order, which only the sinks' version
// guard can do: the caller must check that every table has one.
func (c Config) OrderedConsumers() bool { return c.needsVersions() }

// tls returns the TLS block as the amqps:// URL uses it: enabled.
func (c Config) tls() TLS {
	t := c.TLS
	t.Enabled = true
	return t
}

// tlsClient builds the TLS client config, or nil for the library default
// (no tls: block). The server name is left to the client library (the URL
// host) unless server_name is set.
func (c Config) tlsClient() (*tls.Config, error) {
	if c.TLS == (TLS{}) {
		return nil, nil
	}
	return c.tls().Client("tls.", "")
}

func (b Backoff) policy() backoff.Policy { return backoff.Policy{Min: b.Min, Max: b.Max} }

// DefaultPrefetch is the prefetch a Config with neither batch_size nor
// prefetch set consumes with.
func DefaultPrefetch() int { return Config{}.withDefaults().Prefetch }

// Check is the source's connection test for `rowsync check`: the broker
// accepts the connection and the queue exists (or will be declared).
func (c Config) Check(key string) (string, cdc.Pinger) {
	return key + " queue " + c.Queue, cdc.PingFunc(func(ctx context.Context) error {
		c := c.withDefaults()
		tc, err := c.tlsClient()
		if err != nil {
			return err
		}
		return (&Source{cfg: c, tls: tc}).Ping(ctx)
	})
}

// Cleartext lists where the password of an amqp:// (not amqps://) URL
// would travel in clear.
func (c Config) Cleartext() []secret.Cleartext {
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "amqp" || u.User == nil {
		return nil
	}
	if _, ok := u.User.Password(); !ok {
		return nil
	}
	return []secret.Cleartext{{Key: ".url", Addr: u.Host, What: "the password (amqp://, not amqps://)"}}
}
