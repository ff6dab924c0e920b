// Package redisconn is the one home of rowsync's Redis connections: the
// redis: and invalidate_redis: config blocks and the go-redis client they
// build, shared by the Redis hash projector, the invalidator, checkpoints,
// the lease, snapshot and verify.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"github.com/rowsync/rowsync/internal/secret"
	"os"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/tlsconf"
)

// DefaultAddr is the address of a Config without addr or addrs.
const DefaultAddr = "127.0.0.1:6379"

// Config is a Redis connection.
type Config struct {
	// Addr is host:port. Default: 127.0.0.1:6379
	Addr string `yaml:"addr"`
	// Addrs, when several, selects a Redis Cluster client. Default: none.
	Addrs []string `yaml:"addrs"`
	// DB is the database index (not with a cluster). Default: 0
	DB       int    `yaml:"db"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// PasswordFile is read for the password instead of Password.
	PasswordFile string `yaml:"password_file"`
	// TLS: true (system roots) or {enabled, ca_file, cert_file, key_file,
	// server_name, insecure_skip_verify}. Default: off
	TLS tlsconf.Config `yaml:"tls"`
	// PoolSize caps connections. Default: 10 per CPU (go-redis default).
	PoolSize int `yaml:"pool_size"`
}

// Validate reports every problem at once, each prefixed by its key.
func (c Config) Validate() error {
	var errs []error
	if len(c.Addrs) > 1 && c.DB != 0 {
		errs = append(errs, errors.New("db: a cluster has only db 0"))
	}
	if c.DB < 0 {
		errs = append(errs, fmt.Errorf("db: %d out of range", c.DB))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, errors.New("password_file: set password or password_file, not both"))
	}
	if c.PasswordFile != "" {
		if _, err := os.Stat(c.PasswordFile); err != nil {
			errs = append(errs, fmt.Errorf("password_file: %w", err))
		}
	}
	if c.PoolSize < 0 {
		errs = append(errs, errors.New("pool_size: must not be negative"))
	}
	errs = append(errs, c.TLS.Validate("tls.")...)
	return errors.Join(errs...)
}

// Secrets returns the password and the content of password_file.
func (c Config) Secrets() []string {
	return append([]string{c.Password}, secret.File(c.PasswordFile)...)
}

// Addresses returns the configured addresses, DefaultAddr when none.
func (c Config) Addresses() []string {
	if len(c.Addrs) > 0 {
		return c.Addrs
	}
	if c.Addr != "" {
		return []string{c.Addr}
	}
	return []string{DefaultAddr}
}

// String returns the addresses, comma-separated, for logs and `check`.
func (c Config) String() string { return strings.Join(c.Addresses(), ",") }

// New builds the client: a cluster client for several addresses, else a
// single-node client. It does not connect; the caller closes it.
func New(c Config) (goredis.UniversalClient, error) {
	pw := c.Password
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
		pw = strings.TrimSpace(string(b))
	}
	addrs := c.Addresses()
	opts := &goredis.UniversalOptions{Addrs: addrs, DB: c.DB, Username: c.Username, Password: pw, PoolSize: c.PoolSize}
	host := ""
	if len(addrs) == 1 { // a cluster's nodes are checked by their own names
		host, _, _ = strings.Cut(addrs[0], ":")
	}
	tc, err := c.TLS.Client("tls.", host)
	if err != nil {
		return nil, err
	}
	opts.TLSConfig = tc
	if len(addrs) > 1 {
		return goredis.NewClusterClient(opts.Cluster()), nil
	}
	return goredis.NewClient(opts.Simple()), nil
}

// Check is the connection test for `rowsync check`: the server answers
// PING.
func (c Config) Check(key string) (string, cdc.Pinger) {
	return key + " " + c.String(), cdc.PingFunc(func(ctx context.Context) error {
		cl, err := New(c)
		if err != nil {
			return err
		}
		defer cl.Close()
		return cl.Ping(ctx).Err()
	})
}

// Cleartext lists where the password would travel in clear (no TLS).
func (c Config) Cleartext() []secret.Cleartext {
	if c.Password == "" && c.PasswordFile == "" || c.TLS.Enabled {
		return nil
	}
	var out []secret.Cleartext
	for _, a := range c.Addresses() {
		out = append(out, secret.Cleartext{Addr: a, What: "the password"})
	}
	return out
}
