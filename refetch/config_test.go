package refetch

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem; none means valid
	}{
		{"minimal", Config{DSN: "root@tcp(127.0.0.1:3306)/"}, nil},
		{"all set", Config{DSN: "u:p@tcp(db:3306)/shop", MaxOpenConns: 8, ChunkSize: 1000, Timeout: time.Second}, nil},
		{"missing dsn", Config{}, []string{"dsn: required"}},
		{"bad dsn", Config{DSN: "root@tcp(127.0.0.1:3306"}, []string{"dsn: "}},
		{"everything wrong", Config{MaxOpenConns: -1, ChunkSize: MaxChunkSize + 1, Timeout: -time.Second},
			[]string{"dsn: required", "max_open_conns: must not be negative", "chunk_size: must be between", "timeout: must not be negative"}},
		{"tiny timeout", Config{DSN: "root@tcp(h)/", Timeout: time.Microsecond}, []string{"timeout: must be at least 1ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if n := len(strings.Split(err.Error(), "\n")); n != len(tc.want) {
				t.Errorf("%d problems, want %d: %v", n, len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	src := "dsn: root@tcp(127.0.0.1:3306)/\nmax_open_conns: 2\nchunk_size: 100\ntimeout: 750ms\n"
	var c Config
	dec := yaml.NewDecoder(bytes.NewBufferString(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{DSN: "root@tcp(127.0.0.1:3306)/", MaxOpenConns: 2, ChunkSize: 100, Timeout: 750 * time.Millisecond}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	d := Config{DSN: "x"}.withDefaults()
	if d.MaxOpenConns != DefaultMaxOpenConns || d.ChunkSize != DefaultChunkSize || d.Timeout != DefaultTimeout {
		t.Fatalf("defaults %+v", d)
	}
	var bad Config
	dec = yaml.NewDecoder(bytes.NewBufferString("chunksize: 3\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&bad); err == nil {
		t.Fatal("misspelt key accepted")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{}, nil); err == nil || !strings.Contains(err.Error(), "dsn: required") {
		t.Fatalf("err = %v", err)
	}
}
