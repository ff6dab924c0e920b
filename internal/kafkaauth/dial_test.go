package kafkaauth

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rowsync/rowsync/internal/tlsconf"
)

func TestPing(t *testing.T) {
	c, err := kfake.NewCluster(kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	ctx := context.Background()

	// the first broker down, the second answers
	if err := Ping(ctx, append([]string{closed}, c.ListenAddrs()...), SASL{}, tlsconf.Config{}); err != nil {
		t.Fatalf("ping: %v", err)
	}
	err = Ping(ctx, []string{closed}, SASL{}, tlsconf.Config{})
	if err == nil || !strings.Contains(err.Error(), "no broker answered") || !strings.Contains(err.Error(), closed) {
		t.Fatalf("no broker up: %v", err)
	}
	if err := Ping(ctx, nil, SASL{}, tlsconf.Config{}); err == nil {
		t.Fatal("no brokers: nil error")
	}
	// a password file that cannot be read fails before dialling
	err = Ping(ctx, c.ListenAddrs(), SASL{Mechanism: "plain", Username: "u", PasswordFile: "/nonexistent/pw"}, tlsconf.Config{})
	if err == nil || !strings.Contains(err.Error(), "sasl.password_file") {
		t.Fatalf("unreadable password file: %v", err)
	}
}
