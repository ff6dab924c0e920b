package decode

import (
	"errors"
	"strings"
	"testing"

	"github.com/rowsync/rowsync/cdc"
)

type decodeFunc func(Message) ([]cdc.Event, error)

func (f decodeFunc) Decode(m Message) ([]cdc.Event, error) { return f(m) }

func TestGuard(t *testing.T) {
	ok := []cdc.Event{{DB: "d", Table: "t"}}
	dec := Guard(decodeFunc(func(m Message) ([]cdc.Event, error) {
		switch string(m.Value) {
		case "panic":
			panic("index out of range")
		case "bad":
			return nil, errors.New("bad json")
		}
		return ok, nil
	}))
	for _, tc := range []struct {
		name, value string
		wantErr     string
		wantEvents  int
	}{
		{"passes events", "fine", "", 1},
		{"passes errors", "bad", "bad json", 0},
		{"panic becomes an error", "panic", "decoder panic: index out of range", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := dec.Decode(Message{Value: []byte(tc.value)})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if len(evs) != tc.wantEvents {
				t.Fatalf("%d events, want %d", len(evs), tc.wantEvents)
			}
		})
	}
	if Guard(dec) != dec {
		t.Error("Guard wrapped a guarded decoder again")
	}
}
