// Command rowsync keeps Redis hashes, MongoDB collections and Cache-Aside
// keys in step with MySQL tables, from the binlog or from canal, Maxwell
// or Debezium messages on Kafka or RabbitMQ.
//
//	rowsync run     -c FILE   run the pipeline until SIGINT/SIGTERM
//	rowsync check   -c FILE   validate the file, then try every connection
//	rowsync decode  --format F [FILE]   print normalized changes of messages
//	rowsync verify  -c FILE   compare Redis hashes with the MySQL tables
//	rowsync snapshot -c FILE  copy the rows that exist now into the sinks
//	rowsync backfill -c FILE TABLE...  have the running pipeline copy them
//	rowsync version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // runtime failure
	exitConfig = 2 // bad command line or configuration: nothing was connected
)

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitConfig
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "decode":
		return cmdDecode(args[1:], stdin, stdout, stderr)
	case "verify":
		return cmdVerify(args[1:], stdout, stderr)
	case "snapshot":
		return cmdSnapshot(args[1:], stdout, stderr)
	case "backfill":
		return cmdBackfill(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "rowsync", version)
		return exitOK
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "rowsync: unknown command %q\n", args[0])
	usage(stderr)
	return exitConfig
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  rowsync run     -c FILE            run the pipeline until SIGINT/SIGTERM
  rowsync check   -c FILE            validate the config, then try every connection
  rowsync decode  --format F [--mysql DSN] [FILE]  print each message's changes as JSON lines (--mysql types typeless formats)
  rowsync verify  -c FILE --mysql DSN  compare redis_hash tables with MySQL
  rowsync snapshot -c FILE [--tables RE] [--chunk N] [--force]  copy existing rows into the sinks
  rowsync backfill -c FILE [--chunk N] [--wait] TABLE...  have the running pipeline copy existing rows
  rowsync backfill -c FILE --status | --cancel TABLE        show or stop its backfills
  rowsync version
`)
}
