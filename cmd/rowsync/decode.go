package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/rowsync/rowsync/mysqlmeta"
	"github.com/rowsync/rowsync/source/decode"
	"github.com/rowsync/rowsync/source/decode/all"
)

// cmdDecode prints the normalized changes of each message in FILE (or
// stdin) as JSON lines. Messages are split this way: canal-protobuf input
// is one binary message; JSON input that parses as one JSON value is one
// message; otherwise each non-empty line is a message. A message that does
// not decode is reported on stderr with its number and the exit code is 1.
func cmdDecode(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("decode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "", "message format: "+fmt.Sprint(all.Names()))
	keyFile := fs.String("key", "", "file with the Kafka key of the (single) message (Debezium, Maxwell)")
	pkFlag := fs.String("pk", "", "primary-key columns when messages carry none, comma-separated")
	dsn := fs.String("mysql", "", "DSN of the database whose information_schema types typeless formats (Debezium without schemas, Maxwell, jsonl)")
	var set decode.Settings
	fs.StringVar(&set.TimeZone, "time-zone", "", "zone the producer printed TIMESTAMP text in (canal, jsonl), e.g. +08:00 (default UTC)")
	fs.StringVar(&set.Debezium.Decimal, "decimal-mode", "", "Debezium decimal.handling.mode: precise, string, double (default precise)")
	fs.StringVar(&set.Debezium.Time, "time-mode", "", "Debezium time.precision.mode: adaptive_time_microseconds, adaptive, connect (default adaptive_time_microseconds)")
	fs.StringVar(&set.Debezium.Binary, "binary-mode", "", "Debezium binary.handling.mode: bytes, base64, base64-url-safe, hex (default bytes)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if err := set.Validate(); err != nil {
		fmt.Fprintf(stderr, "rowsync decode: %v\n", err)
		return exitConfig
	}
	loc, _ := set.Location()
	opts := decode.Options{KeyColumns: staticPK(*pkFlag), TimeZone: loc, Debezium: set.Debezium}
	if *dsn != "" {
		sc, err := mysqlmeta.OpenSchemas(*dsn)
		if err != nil {
			fmt.Fprintf(stderr, "rowsync decode: --mysql: %v\n", err)
			return exitConfig
		}
		defer sc.Close()
		opts.Schemas = sc
	}
	dec, err := all.New(*format, opts)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync decode: --format: %v\n", err)
		return exitConfig
	}
	in := stdin
	if fs.NArg() > 0 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "rowsync decode: %v\n", err)
			return exitConfig
		}
		defer f.Close()
		in = f
	}
	raw, err := io.ReadAll(in)
	if err != nil {
		fmt.Fprintf(stderr, "rowsync decode: read input: %v\n", err)
		return exitFail
	}
	var key []byte
	if *keyFile != "" {
		if key, err = os.ReadFile(*keyFile); err != nil {
			fmt.Fprintf(stderr, "rowsync decode: --key: %v\n", err)
			return exitConfig
		}
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	code := exitOK
	for i, msg := range splitMessages(*format, raw) {
		evs, err := dec.Decode(decode.Message{Key: key, Value: msg, Topic: "stdin", Offset: int64(i)})
		if err != nil {
			out.Flush()
			fmt.Fprintf(stderr, "message %d: %v\n", i+1, err)
			code = exitFail
			continue
		}
		for _, ev := range evs {
			line, err := decode.EventJSON(ev)
			if err != nil {
				fmt.Fprintf(stderr, "message %d: render: %v\n", i+1, err)
				code = exitFail
				continue
			}
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return code
}

func splitMessages(format string, raw []byte) [][]byte {
	if format == "canal-protobuf" {
		return [][]byte{raw}
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil
	}
	if format != "jsonl" && json.Valid(trimmed) {
		return [][]byte{trimmed}
	}
	var msgs [][]byte
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			msgs = append(msgs, line)
		}
	}
	return msgs
}

func staticPK(list string) func(db, table string) []string {
	if list == "" {
		return nil
	}
	cols := bytes.Split([]byte(list), []byte(","))
	pk := make([]string, len(cols))
	for i, c := range cols {
		pk[i] = string(bytes.TrimSpace(c))
	}
	return func(string, string) []string { return pk }
}
