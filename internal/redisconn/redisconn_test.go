package redisconn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
