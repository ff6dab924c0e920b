package all

import (
	"strings"
	"testing"

	"github.com/rowsync/rowsync/source/decode"
)

func TestNew(t *testing.T) {
	for _, name := range Names() {
		d, err := New(name, decode.Options{})
		if err != nil || d == nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := New("canal", decode.Options{})
	if err == nil || !strings.Contains(err.Error(), "canal-json, canal-protobuf") {
		t.Fatalf("err %v", err)
	}
}

func TestVersioned(t *testing.T) {
	for format, want := range map[string]bool{"canal-json": false, "canal-protobuf": true, "maxwell": true, "debezium": true, "jsonl": true, "canal": false} {
		if got := Versioned(format); got != want {
			t.Errorf("Versioned(%q) = %v, want %v", format, got, want)
		}
	}
}
