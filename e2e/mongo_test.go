package e2e

// The MongoDB sink end to end (issues 4 and 13).
//
// TestMongo generates one change sequence (internal/changegen, 10,000
// changes by default, 20,000 with -long, on the scalar-keyed users table:
// inserts, updates, deletes, primary-key changes; NULLs, unicode, DECIMAL,
// DATETIME(3), DATE, DOUBLE, JSON, BLOB, ENUM, SET, BIGINT UNSIGNED beyond
// int64) and sends it to MongoDB three ways, one after the other:
//
//   - binlog: executed as SQL statements on the binlog MariaDB (3307) while
//     rowsync streams the binlog; rowsync is SIGKILLed in the middle (with
//     changes written while it is down) and restarted from its checkpoint;
//   - canal-json over Kafka (kfake, 4 partitions by pk hash);
//   - Maxwell JSON (with its table-create preamble) over RabbitMQ.
//
// The binlog collection must equal the MySQL table exactly: every row's
// document, built independently here from the row as the refetch package
// types it and the README's value-type table, byte for byte; deleted rows
// absent; no other document. The same is checked against the generator's
// own final state. The Kafka and RabbitMQ collections must then be
// byte-identical to the binlog one, field order included.
//
// TestMongoComposite runs the three paths on a smaller sequence over both
// tables (a composite _id), TestMongoGuarded a smaller binlog sequence over
// both with the version guard on, across a SIGKILL, and TestMongoHostile
// hostile canal-json messages among good ones.
//
// The server is ROWSYNC_TEST_MONGO_URI when set, else FerretDB started by
// scripts/ferretdb.sh on 127.0.0.1:$ROWSYNC_E2E_FERRETDB_PORT (default
// 27029, a port no other package's tests use). FerretDB 1.24 has no
// Decimal128 (it drops the connection), so there DECIMAL and BIGINT
// UNSIGNED beyond int64 are stored with `decimal: string`, in bulks of 25
// by two writers; against a real MongoDB the test uses Decimal128 and the
// defaults.

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/changegen"
	"github.com/rowsync/rowsync/internal/testlock"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
	"github.com/rowsync/rowsync/refetch"
)

const binlogDSN = "root@tcp(127.0.0.1:3307)/?interpolateParams=true"

// mongoServer is the test's MongoDB-compatible server.
type mongoServer struct {
	uri    string
	client *mongo.Client
	ferret bool // FerretDB: no Decimal128
}

// startMongo connects to ROWSYNC_TEST_MONGO_URI or starts FerretDB. A
// FerretDB this call started is stopped when t ends; one that already
// answered is left running. The FerretDB is the test's alone until t ends
// (a lock shared with other test processes, e.g. two `go test ./e2e` at
// once): FerretDB 1.24 wedges under parallel heavy writers, and one
// process's cleanup must not stop the server under another's test.
func startMongo(t *testing.T) *mongoServer {
	t.Helper()
	uri := os.Getenv("ROWSYNC_TEST_MONGO_URI")
	if uri == "" {
		port := os.Getenv("ROWSYNC_E2E_FERRETDB_PORT")
		if port == "" {
			port = "27029"
		}
		lockFerret(t, port)
		env := append(os.Environ(), "ROWSYNC_FERRETDB_PORT="+port)
		var out bytes.Buffer
		cmd := exec.Command("bash", filepath.Join(repoRoot, "scripts", "ferretdb.sh"), "start")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("scripts/ferretdb.sh start: %v\n%s", err, out.String())
		}
		if strings.Contains(out.String(), "starting on") {
			t.Cleanup(func() {
				stop := exec.Command("bash", filepath.Join(repoRoot, "scripts", "ferretdb.sh"), "stop")
				stop.Env = env
				if b, err := stop.CombinedOutput(); err != nil {
					t.Logf("scripts/ferretdb.sh stop: %v\n%s", err, b)
				}
			})
		}
		uri = "mongodb://127.0.0.1:" + port + "/?directConnection=true"
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(2 * time.Minute))
	if err != nil {
		t.Fatalf("mongo connect: %v", err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := client.Ping(ctx, nil); err != nil {
		t.Fatalf("mongo ping %s: %v", uri, err)
	}
	s := &mongoServer{uri: uri, client: client}
	var info bson.M
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err == nil {
		_, s.ferret = info["ferretdbVersion"]
	}
	return s
}

// lockFerret takes the e2e lock of the FerretDB on port, waiting for
// another test process to finish with it, and releases it when t ends
// (after the server is stopped and the databases dropped: cleanups run
// last-registered first).
func lockFerret(t *testing.T, port string) {
	t.Helper()
	release, err := testlock.Acquire("ferretdb-"+port, func() {
		t.Logf("waiting for another test process to finish with the FerretDB on port %s", port)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
}

// database returns a fresh database name, dropped when t ends.
func (m *mongoServer) database(t *testing.T, name string) string {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.client.Database(name).Drop(ctx); err != nil {
			t.Logf("drop mongo database %s: %v", name, err)
		}
	})
	return name
}

// decimalMode is the projector's decimal setting the server supports.
func (m *mongoServer) decimalMode() string {
	if m.ferret {
		return "string"
	}
	return "decimal128"
}

// mongoYAML is the mongo: block and the tables of set, written to
// database (guarded by versionField when set). FerretDB gets what it needs
// (see scripts/ferretdb/main.go): bulks well under its 50-connection pool,
// two writers, DECIMAL as text.
func mongoYAML(m *mongoServer, set *changegen.Set, database, deadletter, versionField string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mongo:\n  uri: %q\n  decimal: %s\n", m.uri, m.decimalMode())
	if m.ferret {
		b.WriteString("  bulk_size: 25\nworkers: 2\n")
	}
	b.WriteString(processYAML(deadletter) + "tables:\n")
	for _, tb := range set.Tables {
		fmt.Fprintf(&b, "  - match: '%s\\.%s'\n    pk: [%s]\n    mongo:\n      database: %s\n",
			tb.DB, tb.Name, strings.Join(tb.PK, ", "), database)
		if versionField != "" {
			fmt.Fprintf(&b, "      version_field: %s\n", versionField)
		}
	}
	return b.String()
}

// docSet is a collection's documents by encoded _id.
type docSet map[string]bson.Raw

// idKey encodes an _id value (type and bytes) as a map key.
func idKey(v bson.RawValue) string { return string(rune(v.Type)) + string(v.Value) }

// readDocs reads every document of database.coll, passed through
// normalize when set (a nil document from it is left out).
func (m *mongoServer) readDocs(ctx context.Context, database, coll string, normalize func(bson.Raw) (bson.Raw, error)) (docSet, error) {
	cur, err := m.client.Database(database).Collection(coll).Find(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	out := docSet{}
	for cur.Next(ctx) {
		id, err := cur.Current.LookupErr("_id")
		if err != nil {
			return nil, fmt.Errorf("document without _id: %v", cur.Current)
		}
		k := idKey(id)
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("two documents with _id %v", id)
		}
		doc := slices.Clone(cur.Current)
		if normalize != nil {
			if doc, err = normalize(doc); err != nil {
				return nil, err
			}
			if doc == nil {
				continue
			}
		}
		out[k] = doc
	}
	return out, cur.Err()
}

// diffDocs describes how got differs from want (up to a few documents,
// field by field with BSON types); "" means byte-identical.
func diffDocs(got, want docSet) string {
	var diffs []string
	var missing, extra, differ int
	note := func(s string) {
		if len(diffs) < 6 {
			diffs = append(diffs, s)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			missing++
			note("missing " + extJSON(want[k]))
		case !bytes.Equal(g, want[k]):
			differ++
			note(fieldDiff(g, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			extra++
			note("extra " + extJSON(got[k]))
		}
	}
	if missing+extra+differ == 0 {
		return ""
	}
	return fmt.Sprintf("%d documents, %d expected: %d missing, %d extra, %d differ:\n  %s",
		len(got), len(want), missing, extra, differ, strings.Join(diffs, "\n  "))
}

// fieldDiff names the fields of two documents that differ, with types.
func fieldDiff(got, want bson.Raw) string {
	ge, _ := got.Elements()
	we, _ := want.Elements()
	id := want.Lookup("_id")
	var parts []string
	names := func(es []bson.RawElement) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Key())
		}
		return out
	}
	if gn, wn := names(ge), names(we); !slices.Equal(gn, wn) {
		parts = append(parts, fmt.Sprintf("field order/set %v, want %v", gn, wn))
	}
	for _, w := range we {
		g, err := got.LookupErr(w.Key())
		wv := w.Value()
		switch {
		case err != nil:
			parts = append(parts, fmt.Sprintf("%s: absent, want %s %s", w.Key(), wv.Type, wv))
		case g.Type != wv.Type || !bytes.Equal(g.Value, wv.Value):
			parts = append(parts, fmt.Sprintf("%s: got %s %s, want %s %s", w.Key(), g.Type, g, wv.Type, wv))
		}
	}
	return fmt.Sprintf("_id %s: %s", id, strings.Join(parts, "; "))
}

func extJSON(raw bson.Raw) string {
	b, err := bson.MarshalExtJSON(raw, true, false)
	if err != nil {
		return fmt.Sprintf("%v (%v)", raw, err)
	}
	return string(b)
}

// --- the expected documents, from the README's value-type table ---

// expectedDoc is the document the mongo sink must hold for row, built
// here without the projector: _id (the key's value, or a sub-document of
// the key columns in key order), then every column in table order.
func expectedDoc(cols []cdc.Column, pk []string, row *cdc.Row, decimal128 bool) (bson.Raw, error) {
	col := func(name string) *cdc.Column {
		for i := range cols {
			if cols[i].Name == name {
				return &cols[i]
			}
		}
		return nil
	}
	var id any
	if len(pk) == 1 {
		v, err := expectedValue(col(pk[0]), row.Get(pk[0]), decimal128)
		if err != nil {
			return nil, err
		}
		id = v
	} else {
		d := bson.D{}
		for _, k := range pk {
			v, err := expectedValue(col(k), row.Get(k), decimal128)
			if err != nil {
				return nil, err
			}
			d = append(d, bson.E{Key: k, Value: v})
		}
		id = d
	}
	doc := bson.D{{Key: "_id", Value: id}}
	for i := range cols {
		c := &cols[i]
		v, ok := row.Lookup(c.Name)
		if !ok {
			return nil, fmt.Errorf("row has no column %s", c.Name)
		}
		bv, err := expectedValue(c, v, decimal128)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		doc = append(doc, bson.E{Key: c.Name, Value: bv})
	}
	return bson.Marshal(doc)
}

// expectedValue maps one typed value to its BSON value:
//
//	TINYINT..INT           int32
//	BIGINT, INT UNSIGNED   int64
//	BIGINT UNSIGNED > 2⁶³−1, DECIMAL   Decimal128 (decimal: string: the text)
//	FLOAT, DOUBLE          double
//	DATE, DATETIME, TIMESTAMP          date (UTC); zero dates null
//	TIME                   string
//	YEAR                   int32
//	CHAR..TEXT, ENUM       string
//	BINARY..BLOB           binary
//	JSON                   embedded document / array (numbers as relaxed extended JSON reads them)
//	SET                    array of strings
//	BIT                    int64
//	NULL                   null
func expectedValue(c *cdc.Column, v cdc.Value, decimal128 bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	dec := func(s string) (any, error) {
		if !decimal128 {
			return s, nil
		}
		return bson.ParseDecimal128(s)
	}
	wrong := func() (any, error) { return nil, fmt.Errorf("%T value %v in a %s column", v, v, c.Type) }
	switch c.Kind {
	case cdc.KindInt:
		switch x := v.(type) {
		case int64:
			if c.IntBytes < 4 || c.IntBytes == 4 && !c.Unsigned {
				if x < math.MinInt32 || x > math.MaxInt32 {
					return wrong()
				}
				return int32(x), nil
			}
			return x, nil
		case uint64:
			return dec(strconv.FormatUint(x, 10))
		}
	case cdc.KindYear:
		if x, ok := v.(int64); ok {
			return int32(x), nil
		}
	case cdc.KindBit:
		if x, ok := v.(int64); ok {
			return x, nil
		}
	case cdc.KindDecimal:
		if x, ok := v.(cdc.Decimal); ok {
			return dec(string(x))
		}
	case cdc.KindFloat, cdc.KindDouble:
		if x, ok := v.(float64); ok {
			return x, nil
		}
	case cdc.KindDate, cdc.KindDateTime, cdc.KindTimestamp:
		switch x := v.(type) {
		case time.Time:
			return bson.NewDateTimeFromTime(x), nil
		case string:
			return nil, nil // zero date
		}
	case cdc.KindTime:
		if x, ok := v.(time.Duration); ok {
			return cdc.FormatDuration(x, c.Precision), nil
		}
	case cdc.KindString, cdc.KindEnum:
		if x, ok := v.(string); ok {
			return x, nil
		}
	case cdc.KindBytes:
		if x, ok := v.([]byte); ok {
			return bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: x}, nil
		}
	case cdc.KindJSON:
		if x, ok := v.(cdc.JSON); ok {
			var raw bson.Raw
			if err := bson.UnmarshalExtJSON([]byte(`{"v":`+string(x)+`}`), false, &raw); err != nil {
				return nil, fmt.Errorf("json %s: %w", x, err)
			}
			return raw.Lookup("v"), nil
		}
	case cdc.KindSet:
		if x, ok := v.(cdc.Set); ok {
			a := bson.A{}
			for _, l := range x {
				a = append(a, l)
			}
			return a, nil
		}
	}
	return wrong()
}

// expectedFromMySQL reads every row of the set's tables from MySQL, typed
// as the refetch package (and so the binlog) types them, and returns the
// documents per table.
func expectedFromMySQL(ctx context.Context, set *changegen.Set, decimal128 bool) (map[string]docSet, error) {
	r, err := refetch.New(refetch.Config{DSN: binlogDSN, Timeout: time.Minute}, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := map[string]docSet{}
	for _, tb := range set.Tables {
		docs, err := tableDocs(ctx, r, tb.DB, tb.Name, tb.PK, decimal128)
		if err != nil {
			return nil, err
		}
		out[tb.Name] = docs
	}
	return out, nil
}

// tableDocs reads every row of db.table (primary key pk) through r and
// returns the documents the mongo sink must hold for them.
func tableDocs(ctx context.Context, r *refetch.Refetcher, db, table string, pk []string, decimal128 bool) (docSet, error) {
	cur, err := r.Scan(ctx, db, table, 2000)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(cur.PK(), pk) {
		return nil, fmt.Errorf("%s.%s: primary key %v, want %v", db, table, cur.PK(), pk)
	}
	docs := docSet{}
	for {
		rows, bad, err := cur.Next(ctx)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bad) > 0 {
			return nil, fmt.Errorf("%s.%s: untypable row %s: %v", db, table, bad[0].Key, bad[0].Err)
		}
		for _, row := range rows {
			if err := addDoc(docs, cur.Columns(), pk, row, decimal128); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", db, table, err)
			}
		}
	}
}

// expectedFromSet is the documents of the generator's final state.
func expectedFromSet(set *changegen.Set, decimal128 bool) (map[string]docSet, error) {
	out := map[string]docSet{}
	for _, tb := range set.Tables {
		docs := docSet{}
		for _, row := range set.Final[tb] {
			if err := addDoc(docs, tb.Columns(), tb.PK, row, decimal128); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", tb.DB, tb.Name, err)
			}
		}
		out[tb.Name] = docs
	}
	return out, nil
}

func addDoc(docs docSet, cols []cdc.Column, pk []string, row *cdc.Row, decimal128 bool) error {
	raw, err := expectedDoc(cols, pk, row, decimal128)
	if err != nil {
		return err
	}
	docs[idKey(bson.Raw(raw).Lookup("_id"))] = raw
	return nil
}

// waitDocs polls until every collection of database equals want exactly,
// or fails after timeout with the last difference. p must keep running.
func (m *mongoServer) waitDocs(t *testing.T, what, database string, want func() map[string]docSet, timeout time.Duration, p *proc,
	normalize func(bson.Raw) (bson.Raw, error)) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		last = ""
		w := want()
		for _, coll := range slices.Sorted(maps.Keys(w)) {
			got, err := m.readDocs(ctx, database, coll, normalize)
			if err != nil {
				last = fmt.Sprintf("%s: read: %v", coll, err)
				break
			}
			if d := diffDocs(got, w[coll]); d != "" {
				last = coll + ": " + d
				break
			}
		}
		if last == "" {
			return
		}
		if p != nil && p.exited() {
			t.Fatalf("%s: rowsync exited (%v) before the end state; last difference: %s", what, p.err, last)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: end state not reached within %v: %s", what, timeout, last)
		}
		time.Sleep(time.Second)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestMongo: binlog (with a SIGKILL and restart), canal-json over Kafka and
// Maxwell over RabbitMQ carry one change sequence (10,000 changes on the
// scalar-keyed users table) into three MongoDB databases; the binlog one
// equals the MySQL table, typed per the README, and the other two are
// byte-identical to it, field order included. The paths run one after the
// other: FerretDB 1.24 wedges when parallel heavy writers share it.
func TestMongo(t *testing.T) {
	m := startMongo(t)
	if m.ferret {
		t.Logf("server is FerretDB: DECIMAL and BIGINT UNSIGNED > 2^63-1 are stored as strings (decimal: string); FerretDB 1.x has no Decimal128")
	}
	threePaths(t, m, "rs_e2e_mongo_", changegen.Config{Seed: 400, Changes: size(10000, 20000), Keys: 2500,
		Partitions: partitions, Tables: []string{"users"}})
}

// TestMongoComposite: the three paths of TestMongo on a smaller sequence
// over both tables, so composite _ids (a sub-document in key order) are
// byte-identical across paths too. FerretDB 1.24 never pushes a composite
// _id down to PostgreSQL (each write scans the collection), so it stays
// small.
func TestMongoComposite(t *testing.T) {
	m := startMongo(t)
	threePaths(t, m, "rs_e2e_mongoc_", changegen.Config{Seed: 402, Changes: size(1000, 4000), Keys: 150,
		Partitions: partitions})
}

// threePaths generates cfg's changes and carries them into MongoDB by the
// binlog (across a SIGKILL), then canal-json over Kafka, then Maxwell over
// RabbitMQ, one after the other; the binlog collections must equal the
// MySQL tables and the other two must be byte-identical to them.
func threePaths(t *testing.T, m *mongoServer, prefix string, cfg changegen.Config) {
	t.Helper()
	id := randomHex(4)
	cfg.DB = prefix + id
	set := changegen.Generate(cfg)
	db := binlogSchema(t, set)
	dbs := map[string]string{}
	for _, path := range []string{"binlog", "kafka", "rabbit"} {
		dbs[path] = m.database(t, prefix+id+"_"+path)
	}
	fromMySQL := runBinlogPath(t, m, set, db, dbs["binlog"], "", !m.ferret)

	// The other paths must give exactly the binlog path's documents.
	binlogDocs := map[string]docSet{}
	for _, tb := range set.Tables {
		docs, err := m.readDocs(context.Background(), dbs["binlog"], tb.Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != len(fromMySQL[tb.Name]) {
			t.Fatalf("binlog database holds %d %s, MySQL %d", len(docs), tb.Name, len(fromMySQL[tb.Name]))
		}
		binlogDocs[tb.Name] = docs
	}

	ks := newSetup(t, "mongo-kafka")
	canal, err := set.Stream(changegen.EncCanalJSON)
	if err != nil {
		t.Fatal(err)
	}
	k := startKafka(t, ks.name, partitions)
	k.produce(t, canal)
	kcfg := writeFile(t, ks.dir, "rowsync.yaml", ks.kafkaHeadYAML(k, "canal-json")+mongoYAML(m, set, dbs["kafka"], ks.dl, ""))
	began := time.Now()
	kp := rowsync(t, kcfg, ks.log)
	m.waitDocs(t, "canal-json over Kafka vs binlog", dbs["kafka"], func() map[string]docSet { return binlogDocs }, 4*time.Minute, kp, nil)
	k.waitCommittedEnd(t, ks.name, counts(canal))
	kp.stop(t)
	t.Logf("Kafka: %d canal-json messages applied in %v, documents byte-identical to the binlog path's",
		len(flatten(canal)), time.Since(began).Round(time.Millisecond))

	rs := newSetup(t, "mongo-rabbit")
	maxwell, err := set.Stream(changegen.EncMaxwell)
	if err != nil {
		t.Fatal(err)
	}
	rq := startRabbit(t, rs.name)
	rq.publish(t, flatten(maxwell))
	rcfg := writeFile(t, rs.dir, "rowsync.yaml", rs.rabbitHeadYAML(rs.name, "maxwell")+mongoYAML(m, set, dbs["rabbit"], rs.dl, ""))
	began = time.Now()
	rp := rowsync(t, rcfg, rs.log)
	m.waitDocs(t, "Maxwell over RabbitMQ vs binlog", dbs["rabbit"], func() map[string]docSet { return binlogDocs }, 4*time.Minute, rp, nil)
	rq.waitEmpty(t)
	rp.stop(t)
	t.Logf("RabbitMQ: %d Maxwell messages applied in %v, documents byte-identical to the binlog path's",
		len(flatten(maxwell)), time.Since(began).Round(time.Millisecond))

	for _, s := range []*setup{ks, rs} {
		if dl := readDeadLetters(t, s.dl); len(dl) > 0 {
			t.Errorf("%s: %d dead letters, first: %+v", s.name, len(dl), dl[0])
		}
	}
}

// TestMongoGuarded: a smaller binlog run over both tables (the composite
// _id of items) with the version guard on, across a SIGKILL: the live
// documents equal the MySQL tables (each with its version), and every
// deleted row is at most a tombstone.
func TestMongoGuarded(t *testing.T) {
	m := startMongo(t)
	// FerretDB 1.24 never pushes a composite _id down to PostgreSQL: each
	// write scans the collection, so items stay small.
	n, keys := size(1500, 6000), 200
	id := randomHex(4)
	schema := "rs_e2e_mongog_" + id
	set := changegen.Generate(changegen.Config{Seed: 401, Changes: n, Keys: keys, DB: schema, Partitions: partitions})
	db := binlogSchema(t, set)
	database := m.database(t, "rs_e2e_mongog_"+id)
	runBinlogPath(t, m, set, db, database, "_v", !m.ferret)
}

// binlogSchema creates the set's tables in a schema of the binlog server,
// dropped when t ends.
func binlogSchema(t *testing.T, set *changegen.Set) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("mysql", binlogDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(2)
	schema := set.Config.DB
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+schema+" CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+schema); err != nil {
			t.Errorf("drop %s: %v", schema, err)
		}
	})
	for _, tb := range set.Tables {
		if _, err := db.ExecContext(ctx, tb.CreateSQL()); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// runBinlogPath executes the set as SQL on the binlog server while rowsync
// streams it into database, SIGKILLs rowsync at half the changes (more are
// written while it is down) and restarts it from its checkpoint, then waits
// until the collections equal the MySQL tables. It returns the expected
// documents (without the version field).
func runBinlogPath(t *testing.T, m *mongoServer, set *changegen.Set, db *sql.DB, database, versionField string, decimal128 bool) map[string]docSet {
	t.Helper()
	ctx := context.Background()
	n := len(set.Changes)
	start := binlogPos(t, db)
	bs := newSetup(t, "mongo-binlog")
	bcfg := writeFile(t, bs.dir, "rowsync.yaml", binlogHeadYAML(bs.name, set.Config.DB)+fmt.Sprintf(`    start: %q
checkpoint:
  file: %s
`, start, filepath.Join(bs.dir, "checkpoint.json"))+
		mongoYAML(m, set, database, bs.dl, versionField))
	bp := rowsync(t, bcfg, bs.log)
	began := time.Now()
	half, resume := n/2, n*7/10
	if err := set.ApplySQLRange(ctx, db, 0, half); err != nil {
		t.Fatal(err)
	}
	bp.kill()
	t.Logf("SIGKILL after %d of %d changes were committed", half, n)
	if err := set.ApplySQLRange(ctx, db, half, resume); err != nil {
		t.Fatal(err)
	}
	bp = rowsync(t, bcfg, bs.log)
	if err := set.ApplySQLRange(ctx, db, resume, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d changes committed to MySQL in %v", n, time.Since(began).Round(time.Millisecond))

	fromMySQL, err := expectedFromMySQL(ctx, set, decimal128)
	if err != nil {
		t.Fatal(err)
	}
	fromSet, err := expectedFromSet(set, decimal128)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range set.Tables {
		if d := diffDocs(fromMySQL[tb.Name], fromSet[tb.Name]); d != "" {
			t.Fatalf("%s: the rows in MySQL are not the generator's final state: %s", tb.Name, d)
		}
	}
	var normalize func(bson.Raw) (bson.Raw, error)
	if versionField != "" {
		normalize = func(doc bson.Raw) (bson.Raw, error) { return unversioned(doc, versionField) }
	}
	m.waitDocs(t, "binlog", database, func() map[string]docSet { return fromMySQL }, 4*time.Minute, bp, normalize)
	t.Logf("binlog: collections equal the tables (%d documents) %v after the first change",
		len(fromMySQL[set.Tables[0].Name]), time.Since(began).Round(time.Millisecond))
	bp.stop(t)
	if dl := readDeadLetters(t, bs.dl); len(dl) > 0 {
		t.Errorf("%s: %d dead letters, first: %+v", bs.name, len(dl), dl[0])
	}
	return fromMySQL
}

// unversioned checks a guarded document and returns it without its version
// field, or nil for a tombstone (a deleted row, which must not count).
func unversioned(doc bson.Raw, versionField string) (bson.Raw, error) {
	v, err := doc.LookupErr(versionField)
	if err != nil || v.Type != bson.TypeInt64 || v.Int64() <= 0 {
		return nil, fmt.Errorf("_id %s: version field %q missing or not a positive int64: %v", doc.Lookup("_id"), versionField, v)
	}
	if del, err := doc.LookupErr(mongoproj.DeletedField); err == nil {
		if !del.Boolean() {
			return nil, fmt.Errorf("_id %s: %s is not true", doc.Lookup("_id"), mongoproj.DeletedField)
		}
		return nil, nil
	}
	elems, err := doc.Elements()
	if err != nil {
		return nil, err
	}
	out := bson.D{}
	for _, e := range elems {
		if e.Key() != versionField {
			out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	return bson.Marshal(out)
}

// binlogHeadYAML is the name and the source block of a config streaming
// schema's tables from the binlog server, with a server_id of its own.
func binlogHeadYAML(name, schema string) string {
	return fmt.Sprintf(`name: %s
source:
  binlog:
    addr: 127.0.0.1:3307
    user: root
    flavor: mariadb
    server_id: %d
    include: ['%s\..*']
`, name, 3000+int(time.Now().UnixNano()%100000), schema)
}

// binlogPos is the binlog server's current FILE:POS.
func binlogPos(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		t.Fatal("SHOW MASTER STATUS: no row (binlog off?)")
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	return string(vals[0]) + ":" + string(vals[1])
}

// TestMongoHostile: canal-json messages written by a hostile producer,
// interleaved with good ones, over Kafka into MongoDB. A primary key sent
// as an object ({"$ne": null}) in a DELETE or an INSERT, a column whose
// name is a path (a.b) or an operator ($set), and a JSON value with an
// operator key each become one dead letter with a reason; no other
// document is touched; the good changes after them are applied; rowsync
// never exits.
func TestMongoHostile(t *testing.T) {
	m := startMongo(t)
	id := randomHex(4)
	database := m.database(t, "rs_e2e_mongoh_"+id)
	const types = `"mysqlType":{"id":"int(11)","name":"varchar(32)","prefs":"json"},"pkNames":["id"]`
	msg := func(typ, data string) changegen.Message {
		return changegen.Message{Value: []byte(`{"data":[` + data + `],"database":"shop","table":"users","isDdl":false,` +
			types + `,"es":1714558830000,"ts":1714558830123,"type":"` + typ + `"}`)}
	}
	good := func(typ string, n int) changegen.Message {
		return msg(typ, fmt.Sprintf(`{"id":"%d","name":"user %d","prefs":"{\"lang\": \"de\"}"}`, n, n))
	}
	var msgs []changegen.Message
	for n := 1; n <= 5; n++ {
		msgs = append(msgs, good("INSERT", n))
	}
	hostile := []changegen.Message{
		msg("DELETE", `{"id":{"$ne":null},"name":"x","prefs":null}`),
		msg("INSERT", `{"id":{"$gt":0},"name":"x","prefs":null}`),
		msg("INSERT", `{"id":"90","name":"x","prefs":null,"a.b":"dotted"}`),
		msg("INSERT", `{"id":"91","name":"x","prefs":null,"$set":"operator"}`),
		msg("INSERT", `{"id":"92","name":"x","prefs":"{\"$where\": \"sleep(1000)\"}"}`),
	}
	msgs = append(msgs, hostile...)
	msgs = append(msgs, good("UPDATE", 1), good("INSERT", 6), msg("DELETE", `{"id":"2","name":"user 2","prefs":null}`))

	s := newSetup(t, "mongo-hostile")
	k := startKafka(t, s.name, 1)
	k.produce(t, [][]changegen.Message{msgs})
	cfg := writeFile(t, s.dir, "rowsync.yaml", s.kafkaHeadYAML(k, "canal-json")+
		fmt.Sprintf("mongo:\n  uri: %q\n  decimal: %s\n", m.uri, m.decimalMode())+processYAML(s.dl)+
		fmt.Sprintf("tables:\n  - match: 'shop\\.users'\n    mongo:\n      database: %s\n      collection: users\n", database))
	p := rowsync(t, cfg, s.log)

	want := docSet{}
	for _, n := range []int{1, 3, 4, 5, 6} {
		doc, err := bson.Marshal(bson.D{{Key: "_id", Value: int32(n)}, {Key: "id", Value: int32(n)},
			{Key: "name", Value: fmt.Sprintf("user %d", n)}, {Key: "prefs", Value: bson.D{{Key: "lang", Value: "de"}}}})
		if err != nil {
			t.Fatal(err)
		}
		want[idKey(bson.Raw(doc).Lookup("_id"))] = doc
	}
	m.waitDocs(t, "hostile canal-json", database, func() map[string]docSet { return map[string]docSet{"users": want} }, 3*time.Minute, p, nil)
	k.waitCommittedEnd(t, s.name, []int{len(msgs)})
	if p.exited() {
		t.Fatalf("rowsync exited: %v", p.err)
	}
	dl := readDeadLetters(t, s.dl)
	if len(dl) != len(hostile) {
		t.Fatalf("%d dead letters, want %d (one per hostile message): %+v", len(dl), len(hostile), dl)
	}
	for i, d := range dl {
		if d.Reason == "" {
			t.Errorf("dead letter %d has no reason: %+v", i, d)
		}
	}
	for _, field := range []string{"a.b", "$set", "$where"} {
		if !slices.ContainsFunc(dl, func(d deadLetter) bool { return strings.Contains(d.Reason, field) }) {
			t.Errorf("no dead letter names field %q: %+v", field, dl)
		}
	}
	p.stop(t)
}
