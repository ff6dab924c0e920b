package rabbitmq_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rowsync/rowsync/source/rabbitmq"
)

func TestConfigValidate(t *testing.T) {
	ok := rabbitmq.Config{URL: brokerURL, Queue: "q"}
	for _, tc := range []struct {
		name string
		edit func(*rabbitmq.Config)
		want []string // substrings, one per expected problem; none = valid
	}{
		{"minimal", func(*rabbitmq.Config) {}, nil},
		{"full declare", func(c *rabbitmq.Config) {
			c.Declare, c.Exchange, c.RoutingKeys = true, "ex", []string{"a"}
			c.SingleActiveConsumer, c.DeadLetterExchange, c.RejectToDLX = true, "dlx", true
			c.Prefetch, c.BatchSize, c.MaxWait = 65535, 10, time.Second
			c.Reconnect = rabbitmq.Backoff{Min: time.Second, Max: time.Minute}
		}, nil},
		{"empty", func(c *rabbitmq.Config) { *c = rabbitmq.Config{} }, []string{"url: required", "queue: required"}},
		{"bad url", func(c *rabbitmq.Config) { c.URL = "http://x" }, []string{"url: "}},
		{"binding needs declare", func(c *rabbitmq.Config) {
			c.Exchange, c.SingleActiveConsumer, c.DeadLetterExchange = "ex", true, "dlx"
		}, []string{"exchange: needs declare", "single_active_consumer: needs declare", "dead_letter_exchange: needs declare"}},
		{"keys need exchange", func(c *rabbitmq.Config) { c.Declare, c.RoutingKeys = true, []string{"a"} }, []string{"routing_keys: needs exchange"}},
		{"ranges", func(c *rabbitmq.Config) {
			c.Prefetch, c.BatchSize, c.MaxWait, c.Heartbeat, c.DialTimeout = 70000, -1, -1, -1, -1
		}, []string{"prefetch: must be between", "batch_size:", "max_wait:", "heartbeat:", "dial_timeout:"}},
		{"backoff", func(c *rabbitmq.Config) { c.Reconnect = rabbitmq.Backoff{Min: time.Minute, Max: time.Second} }, []string{"reconnect.max: must not be below"}},
		{"backoff min above default max", func(c *rabbitmq.Config) { c.Reconnect.Min = time.Minute }, nil},
		{"tls needs amqps", func(c *rabbitmq.Config) { c.TLS.ServerName = "x" }, []string{"tls: needs an amqps:// url"}},
		{"tls pair", func(c *rabbitmq.Config) { c.URL = "amqps://h/"; c.TLS.CertFile = "c.pem" }, []string{"tls.cert_file: cert_file and key_file go together"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("%d problems, want %d: %v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := rabbitmq.New(rabbitmq.Config{}, idDecoder{}, nil); err == nil {
		t.Fatal("New accepted an empty config")
	}
	if _, err := rabbitmq.New(rabbitmq.Config{URL: brokerURL, Queue: "q"}, nil, nil); err == nil {
		t.Fatal("New accepted a nil decoder")
	}
	cfg := rabbitmq.Config{URL: "amqps://h/", Queue: "q", TLS: rabbitmq.TLS{CAFile: "/nonexistent.pem"}}
	if _, err := rabbitmq.New(cfg, idDecoder{}, nil); err == nil || !strings.HasPrefix(err.Error(), "tls.ca_file:") {
		t.Fatalf("missing CA file: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	src, err := rabbitmq.New(rabbitmq.Config{URL: brokerURL, Queue: "q"}, idDecoder{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSource(t, src)
	c := src.Config()
	if c.BatchSize != 1024 || c.Prefetch != 8192 || c.MaxWait != 20*time.Millisecond ||
		c.Reconnect.Min != 100*time.Millisecond || c.Reconnect.Max != 10*time.Second {
		t.Fatalf("defaults %+v", c)
	}
	src2, err := rabbitmq.New(rabbitmq.Config{URL: brokerURL, Queue: "q", BatchSize: 50000}, idDecoder{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSource(t, src2)
	if p := src2.Config().Prefetch; p != 65535 {
		t.Fatalf("prefetch %d, want capped at 65535", p)
	}
}

// TestBadURLDoesNotPrintThePassword: the AMQP parser quotes the URL in its
// error; the config error once printed the password with it.
func TestBadURLDoesNotPrintThePassword(t *testing.T) {
	c := rabbitmq.Config{URL: "amqp://app:s3cr%tpass@mq:5672/", Queue: "q", Format: "jsonl"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "url: ") || strings.Contains(err.Error(), "s3cr") {
		t.Fatalf("error %v", err)
	}
}

// TestRejectToDLXNeedsAnExchange: reject_to_dlx without a dead-letter
// exchange once dropped undecodable messages silently.
func TestRejectToDLXNeedsAnExchange(t *testing.T) {
	c := rabbitmq.Config{URL: brokerURL, Queue: "q", RejectToDLX: true}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "reject_to_dlx: needs dead_letter_exchange") {
		t.Fatalf("err %v", err)
	}
	c.DeadLetterExchange = "dlx" // a policy's exchange on a queue declared elsewhere
	if err := c.Validate(); err != nil {
		t.Fatalf("err %v", err)
	}
}

func TestURLFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(f, []byte(brokerURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := rabbitmq.Config{URLFile: f, Queue: "q"}
	if err := c.Validate(); err != nil || c.URL != brokerURL {
		t.Fatalf("url %q, err %v", c.URL, err)
	}
	c = rabbitmq.Config{URL: brokerURL, URLFile: f, Queue: "q"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "url_file: set url or url_file, not both") {
		t.Fatalf("err %v", err)
	}
}

// TestTLSBlock: the tls: block is the shared one (internal/tlsconf), with
// the same keys as before; amqps:// turns it on, `enabled` is implied.
func TestTLSBlock(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string // want: a substring of the error; "" = valid
	}{
		{"keys", `{url: "amqps://h/", queue: q, tls: {ca_file: ca.pem, server_name: mq.internal, insecure_skip_verify: false}}`, ""},
		{"enabled and short form", `{url: "amqps://h/", queue: q, tls: true}`, ""},
		{"unknown key", `{url: "amqps://h/", queue: q, tls: {ca: ca.pem}}`, `tls: unknown key "ca"`},
		{"needs amqps", `{url: "amqp://h/", queue: q, tls: {enabled: true}}`, "tls: needs an amqps:// url"},
		{"key without cert", `{url: "amqps://h/", queue: q, tls: {key_file: k.pem}}`, "tls.cert_file: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c rabbitmq.Config
			err := yaml.Unmarshal([]byte(tc.yaml), &c)
			if err == nil {
				err = c.Validate()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// the block's files are read by New, errors named by key
	cfg := rabbitmq.Config{URL: "amqps://h/", Queue: "q", TLS: rabbitmq.TLS{CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}}
	if _, err := rabbitmq.New(cfg, idDecoder{}, nil); err == nil || !strings.HasPrefix(err.Error(), "tls.cert_file:") {
		t.Fatalf("missing client certificate: %v", err)
	}
}
