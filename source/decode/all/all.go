// Package all is the registry of rowsync's wire-format decoders: the one
// place that maps a `format:` name in the config (and `rowsync decode
// --format`) to a decode.Decoder constructor. Adding a format is one line
// in Formats.
package all

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/canaljson"
	"github.com/rowsync/rowsync/source/decode/canalpb"
	"github.com/rowsync/rowsync/source/decode/debezium"
	"github.com/rowsync/rowsync/source/decode/jsonl"
	"github.com/rowsync/rowsync/source/decode/maxwell"
)

// Formats maps each format name to its decoder constructor.
var Formats = map[string]func(decode.Options) (decode.Decoder, error){
	"canal-json":     canaljson.New, // canal flat message (canal.mq.flatMessage=true)
	"canal-protobuf": canalpb.New,   // canal protobuf Packet (flatMessage=false, TCP GET response)
	"maxwell":        maxwell.New,   // Maxwell JSON, one row per message
	"debezium":       debezium.New,  // Debezium MySQL envelope, with or without schema
	"jsonl":          jsonl.New,     // canal_mysql_nosql_sync JSON lines
}

// unversioned lists the formats whose messages carry no binlog position,
// so their events never have a cdc.Position.Version and no version guard
// can order them. The others give one when the producer writes the
// position (Maxwell only with output_binlog_position).
var unversioned = map[string]bool{
	"canal-json": true, // a flat message has no offset (see package canaljson)
}

// Versioned reports whether format's events can carry a Pos.Version.
func Versioned(format string) bool {
	_, ok := Formats[format]
	return ok && !unversioned[format]
}

// Names returns the registered format names, sorted.
func Names() []string {
	names := make([]string, 0, len(Formats))
	for n := range Formats {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New returns the decoder for format behind the validation boundary every
// format shares (decode.Bounded, with opts.Limits), or an error that lists
// the valid names.
func New(format string, opts decode.Options) (decode.Decoder, error) {
	ctor, ok := Formats[format]
	if !ok {
		return nil, fmt.Errorf("unknown format %q (valid: %s)", format, strings.Join(Names(), ", "))
	}
	if err := opts.Limits.Validate(); err != nil {
		return nil, err
	}
	opts.Limits = opts.Limits.WithDefaults()
	d, err := ctor(opts)
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", format, err)
	}
	return decode.Bounded(d, opts), nil
}
