package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	mongoopts "go.mongodb.org/mongo-driver/v2/mongo/options"
)

// mongoPort is the bench's own FerretDB (scripts/ferretdb.sh), so no test
// or demo server is shared with parallel writers.
const mongoPort = "27049"

// startMongo starts (or reuses) the FerretDB helper on mongoPort; stop
// stops it when this call started it.
func startMongo(ctx context.Context, o *options) (uri string, stop func(), err error) {
	script := filepath.Join(o.root, "scripts", "ferretdb.sh")
	env := append(os.Environ(), "ROWSYNC_FERRETDB_PORT="+mongoPort)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script, "start")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &out
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("scripts/ferretdb.sh start: %w: %s", err, out.String())
	}
	stop = func() {}
	if bytes.Contains(out.Bytes(), []byte("starting on")) {
		stop = func() {
			c := exec.Command("bash", script, "stop")
			c.Env = env
			_ = c.Run()
		}
	}
	return "mongodb://127.0.0.1:" + mongoPort + "/?directConnection=true", stop, nil
}

// mongoConfig is a Kafka canal-json → MongoDB config sized for FerretDB
// 1.24 (see scripts/ferretdb/main.go): bulks of 25, two writers, DECIMAL as
// text.
func mongoConfig(name, source, workDir, uri, database string) string {
	return drainConfig(name, source, workDir,
		fmt.Sprintf("mongo:\n  uri: %q\n  decimal: string\n  bulk_size: 25\nworkers: 2\n", uri),
		fmt.Sprintf("    mongo:\n      database: %s\n", database))
}

// runMongoDrain drains canal-json messages from Kafka into MongoDB
// documents (the FerretDB stand-in), then the same messages with a naive
// consumer that sends one ReplaceOne (or DeleteOne) per row, on the same
// server in the same run.
func runMongoDrain(ctx context.Context, o *options, t *table) error {
	n := o.n(20_000)
	uri, stop, err := startMongo(ctx, o)
	if err != nil {
		return err
	}
	defer stop()
	client, err := mongo.Connect(mongoopts.Client().ApplyURI(uri).SetTimeout(time.Minute))
	if err != nil {
		return fmt.Errorf("mongo connect: %w", err)
	}
	defer client.Disconnect(context.Background())
	const rowsyncDB, naiveDB = "rs_bench_mongo", "rs_bench_mongo_naive"
	for _, db := range []string{rowsyncDB, naiveDB} {
		if err := client.Database(db).Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", db, err)
		}
		defer client.Database(db).Drop(context.Background())
	}

	topic := "rs-bench-mongo"
	cluster, addr, err := startKafka(topic)
	if err != nil {
		return err
	}
	defer cluster.Close()
	changes, live := canalWorkload(n)
	if err := produce(ctx, addr, topic, changes); err != nil {
		return err
	}

	cfg := mongoConfig("bench-mongo", kafkaSource(addr, topic, "rs-bench-mongo"), o.work, uri, rowsyncDB)
	res, _, err := timedDrain(ctx, o, "bench-mongo", cfg, n)
	if err != nil {
		return err
	}
	if err := waitDocCount(ctx, client.Database(rowsyncDB).Collection("items"), int64(live), time.Minute); err != nil {
		return fmt.Errorf("after the rowsync drain: %w", err)
	}
	o.log.Info("rowsync mongo drain", "rows/s", int(res.rps()), "startup", res.startup, "steady", int(res.steadyRPS))

	// Baseline: kafka-go's Reader, json.Unmarshal, one ReplaceOne upsert or
	// DeleteOne per row, each its own round trip.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, GroupID: "rs-bench-mongo-naive",
		MaxBytes: 4 << 20, CommitInterval: time.Second, StartOffset: kafka.FirstOffset})
	defer r.Close()
	coll := client.Database(naiveDB).Collection("items")
	nctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	for i := range n {
		m, err := r.ReadMessage(nctx)
		if err != nil {
			return fmt.Errorf("naive read after %d: %w", i, err)
		}
		if err := naiveMongo(nctx, coll, m.Value); err != nil {
			return fmt.Errorf("naive apply: %w", err)
		}
	}
	naive := time.Since(start)
	if err := waitDocCount(ctx, coll, int64(live), time.Minute); err != nil {
		return fmt.Errorf("after the naive drain: %w", err)
	}
	rps, nrps := res.rps(), float64(n)/naive.Seconds()
	t.add(row{bench: fmt.Sprintf("Kafka canal-json → MongoDB (FerretDB stand-in), drain of %dk msgs", n/1000),
		figure: rate(rps, "rows/s"), baseline: rate(nrps, "rows/s") + " (ReplaceOne/row)",
		ratio: ratio(rps, nrps)})
	t.note("MongoDB drain on the FerretDB 1.24 stand-in (PostgreSQL backend, scripts/ferretdb.sh, port %s; bulk_size 25 and 2 writers, what it takes without wedging): rowsync %.0f rows/s from process start, %.0f rows/s after the first ack; CPU per row: rowsync %.1f µs (over a drain this slow, a third of it is the bench's own /metrics polling every 10 ms, gzip included). Figures of the stand-in, not of MongoDB.",
		mongoPort, rps, res.steadyRPS, float64(res.cpu)/float64(n)/1e3)
	return nil
}

// naiveMongo applies one canal-json message the way a hand-written
// consumer would: one ReplaceOne upsert (or DeleteOne) per row.
func naiveMongo(ctx context.Context, coll *mongo.Collection, value []byte) error {
	var m struct {
		Type string              `json:"type"`
		Data []map[string]string `json:"data"`
	}
	if err := json.Unmarshal(value, &m); err != nil {
		return err
	}
	for _, row := range m.Data {
		id, err := strconv.ParseInt(row["id"], 10, 64)
		if err != nil {
			return fmt.Errorf("id %q: %w", row["id"], err)
		}
		filter := bson.D{{Key: "_id", Value: id}}
		if m.Type == "DELETE" {
			if _, err := coll.DeleteOne(ctx, filter); err != nil {
				return err
			}
			continue
		}
		doc := bson.D{{Key: "_id", Value: id}}
		for k, v := range row {
			doc = append(doc, bson.E{Key: k, Value: v})
		}
		if _, err := coll.ReplaceOne(ctx, filter, doc, mongoopts.Replace().SetUpsert(true)); err != nil {
			return err
		}
	}
	return nil
}

// waitDocCount polls until coll holds want documents.
func waitDocCount(ctx context.Context, coll *mongo.Collection, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := coll.CountDocuments(ctx, bson.D{})
		if err == nil && n == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s holds %d documents (err %v), want %d", coll.Name(), n, err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
