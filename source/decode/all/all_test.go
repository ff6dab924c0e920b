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
