package secret

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"amqp://guest:s3cret@127.0.0.1:5672/vhost", "amqp://guest:xxxxx@127.0.0.1:5672/vhost"},
		// what amqp.ParseURI once printed in a config error
		{`url: parse "amqp://user:s3cr%t@host:5672/": invalid URL escape "%t"`, `url: parse "amqp://user:xxxxx@host:5672/": invalid URL escape "%t"`},
		{"amqps://u:p@ss@host/", "amqps://u:xxxxx@host/"},
		{"redis://:hunter2@redis:6379/0", "redis://:xxxxx@redis:6379/0"},
		{"mongodb://app:pw@a:27017,b:27017/?replicaSet=rs", "mongodb://app:xxxxx@a:27017,b:27017/?replicaSet=rs"},
		{"dial mysql root:topsecret@tcp(db:3306)/shop?parseTime=true: refused", "dial mysql root:xxxxx@tcp(db:3306)/shop?parseTime=true: refused"},
		{`dsn "app:pw@/shop"`, `dsn "app:xxxxx@/shop"`},
		{"no secret here: host:5672 user@example.com", "no secret here: host:5672 user@example.com"},
		{"amqp://user@host/", "amqp://user@host/"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestScrubber(t *testing.T) {
	s := NewScrubber("hunter2-redis", "", "ab")
	err := s.Error(fmt.Errorf("auth with hunter2-redis at amqp://g:pw@h/: %w", errors.New("denied")))
	if err.Error() != "auth with xxxxx at amqp://g:xxxxx@h/: denied" {
		t.Fatal(err)
	}
	if s.String("about ab") != "about ab" {
		t.Fatal("short value masked")
	}
	var buf bytes.Buffer
	log := slog.New(s.Handler(slog.NewTextHandler(&buf, nil))).With("url", "amqp://g:topsecret@h/")
	log.Warn("connect hunter2-redis", "err", errors.New("password hunter2-redis refused"),
		slog.Group("g", "dsn", "root:topsecret@tcp(h:1)/"))
	out := buf.String()
	if strings.Contains(out, "hunter2") || strings.Contains(out, "topsecret") || !strings.Contains(out, "xxxxx") {
		t.Fatalf("log line leaks: %s", out)
	}
}
