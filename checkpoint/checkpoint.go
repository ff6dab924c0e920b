// Package checkpoint stores the binlog position a pipeline has applied up
// to, so a restart resumes where the last acknowledged batch ended. A
// position is saved only at a transaction end (see source/binlog); the
// stores here just keep the latest one durably: in Redis (one key per
// pipeline) or in a local file written atomically. A Saver in front of a
// store coalesces frequent acks into at most one background write per
// interval; losing the last interval in a crash only replays changes,
// which the sinks apply idempotently.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Position is a point in a MySQL/MariaDB binlog stream: the file and byte
// offset of the next event to read, and the GTID set executed up to there
// (empty when unknown). It serialises as JSON.
type Position struct {
	File   string `json:"file,omitempty"`
	Offset uint64 `json:"offset,omitempty"`
	GTID   string `json:"gtid,omitempty"`
}

// IsZero reports whether p names no position at all.
func (p Position) IsZero() bool { return p.File == "" && p.GTID == "" }

// String returns "file:offset", followed by " gtid=<set>" when known.
func (p Position) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(p.Offset, 10))
	}
	if p.GTID != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("gtid=")
		b.WriteString(p.GTID)
	}
	return b.String()
}

// Marshal returns p as JSON.
func (p Position) Marshal() ([]byte, error) { return json.Marshal(p) }

// Unmarshal parses JSON written by Marshal.
func Unmarshal(data []byte) (Position, error) {
	var p Position
	if err := json.Unmarshal(data, &p); err != nil {
		return Position{}, fmt.Errorf("decode checkpoint: %w", err)
	}
	if p.IsZero() {
		return Position{}, errors.New("decode checkpoint: neither file nor gtid set")
	}
	return p, nil
}

// Store keeps the latest checkpoint of one pipeline.
//
// Implementations are safe for concurrent use. Save replaces the stored
// position durably before returning nil; an error means it may not have
// been stored (the caller retries or stops). Close releases what the store
// itself opened; injected clients stay open.
type Store interface {
	// Load returns the stored position and true, or false when none was
	// ever saved.
	Load(ctx context.Context) (Position, bool, error)
	Save(ctx context.Context, p Position) error
	Close() error
}
