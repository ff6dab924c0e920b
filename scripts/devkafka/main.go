// Command devkafka runs an in-process Kafka-compatible broker (kfake) for
// rowsync's demo and manual tests. It is a development tool, not a Kafka
// replacement: one node, data in memory unless -data-dir is given.
//
//	go run ./scripts/devkafka -addr 127.0.0.1:9092 -topics canal:3,maxwell:1
//
// It stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "devkafka:", err)
		os.Exit(1)
	}
}

// topicList is a -topics value: "name:partitions,name2" (partitions
// default to -partitions).
type topicList []topicSpec

type topicSpec struct {
	name       string
	partitions int32
}

func (l *topicList) String() string {
	var parts []string
	for _, t := range *l {
		parts = append(parts, fmt.Sprintf("%s:%d", t.name, t.partitions))
	}
	return strings.Join(parts, ",")
}

func (l *topicList) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, n, hasN := strings.Cut(item, ":")
		if name == "" {
			return fmt.Errorf("topic %q: empty name", item)
		}
		spec := topicSpec{name: name, partitions: -1}
		if hasN {
			p, err := strconv.ParseInt(n, 10, 32)
			if err != nil || p < 1 {
				return fmt.Errorf("topic %q: partitions must be a positive number", item)
			}
			spec.partitions = int32(p)
		}
		*l = append(*l, spec)
	}
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("devkafka", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9092", "listen address (host:port; port 0 picks a free one)")
	var topics topicList
	fs.Var(&topics, "topics", "topics to create at start, name[:partitions],... (repeatable)")
	fs.Var(&topics, "seed-topics", "alias of -topics")
	partitions := fs.Int("partitions", 3, "partitions of topics created without a count, and of auto-created ones")
	autoCreate := fs.Bool("auto-create", true, "create unknown topics on first metadata request")
	dataDir := fs.String("data-dir", "", "keep topics, offsets and groups in this directory across restarts (default: memory only)")
	logLevel := fs.String("log-level", "warn", "broker log level: none, error, warn, info, debug")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	host, portText, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("-addr: bad port %q", portText)
	}
	if *partitions < 1 {
		return errors.New("-partitions: must be positive")
	}
	for i := range topics {
		if topics[i].partitions < 1 {
			topics[i].partitions = int32(*partitions)
		}
	}
	level, err := parseLevel(*logLevel)
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts := []kfake.Opt{
		kfake.Ports(port),
		// kfake listens on 127.0.0.1; honour the host of -addr instead, and
		// advertise it, so clients reconnect to what they dialled.
		kfake.ListenFn(func(network, a string) (net.Listener, error) {
			_, p, err := net.SplitHostPort(a)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort(host, p))
		}),
		kfake.DefaultNumPartitions(*partitions),
		kfake.WithLogger(slogLogger{log: log, level: level}),
	}
	if *autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	for _, t := range topics {
		opts = append(opts, kfake.SeedTopics(t.partitions, t.name))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	defer c.Close()

	log.Info("kafka broker listening", "addr", strings.Join(c.ListenAddrs(), ","),
		"topics", topics.String(), "auto_create", *autoCreate, "data_dir", *dataDir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("stopping kafka broker")
	return nil
}

func parseLevel(s string) (kfake.LogLevel, error) {
	switch strings.ToLower(s) {
	case "none":
		return kfake.LogLevelNone, nil
	case "error":
		return kfake.LogLevelError, nil
	case "warn":
		return kfake.LogLevelWarn, nil
	case "info":
		return kfake.LogLevelInfo, nil
	case "debug":
		return kfake.LogLevelDebug, nil
	}
	return 0, fmt.Errorf("-log-level: unknown %q", s)
}

// slogLogger routes kfake's log lines to slog at or above level.
type slogLogger struct {
	log   *slog.Logger
	level kfake.LogLevel
}

func (l slogLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	if level == kfake.LogLevelNone || level > l.level {
		return
	}
	msg := fmt.Sprintf(format, args...)
	switch level {
	case kfake.LogLevelError:
		l.log.Error(msg, "component", "kfake")
	case kfake.LogLevelWarn:
		l.log.Warn(msg, "component", "kfake")
	case kfake.LogLevelInfo:
		l.log.Info(msg, "component", "kfake")
	default:
		l.log.Debug(msg, "component", "kfake")
	}
}
