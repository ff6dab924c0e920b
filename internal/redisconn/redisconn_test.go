package redisconn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/internal/tlsconf"
)

func TestValidateNamesKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"cluster db", Config{Addrs: []string{"a:1", "b:1"}, DB: 2}, "db: a cluster has only db 0"},
		{"negative db", Config{DB: -1}, "db: -1 out of range"},
		{"both passwords", Config{Password: "x", PasswordFile: "/nonexistent"}, "password_file: set password or password_file"},
		{"missing password file", Config{PasswordFile: "/nonexistent/pw"}, "password_file: stat"},
		{"negative pool", Config{PoolSize: -1}, "pool_size: must not be negative"},
		{"default", Config{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestNewConnects: the default address and a password file reach the
// machine's Redis (which has no password: an empty file means none).
func TestNewConnects(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{PasswordFile: pw, DB: 14})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping %s: %v", DefaultAddr, err)
	}
	if got := (Config{}).String(); got != DefaultAddr {
		t.Fatalf("String() = %q", got)
	}
}

// TestTLSBlock: Redis takes the same tls block as every client (it once
// had system roots only: no CA file, client certificate or server name).
func TestTLSBlock(t *testing.T) {
	_, err := New(Config{Addr: "127.0.0.1:6379", TLS: tlsconf.Config{Enabled: true, CAFile: "/nonexistent/ca.pem"}})
	if err == nil || !strings.Contains(err.Error(), "tls.ca_file") {
		t.Fatalf("err %v", err)
	}
	if err := (Config{TLS: tlsconf.Config{Enabled: true, CertFile: "c.pem"}}).Validate(); err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Fatalf("validate: %v", err)
	}
	c, err := New(Config{Addr: "127.0.0.1:6379", TLS: tlsconf.Config{Enabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
