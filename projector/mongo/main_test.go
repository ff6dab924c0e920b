package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/mongotest"
)

// The tests run against a MongoDB-compatible server (internal/mongotest:
// ROWSYNC_TEST_MONGO_URI, else FerretDB on 127.0.0.1:27018). Every test
// uses its own database and drops it.
var (
	testURI    string
	testClient *mongo.Client
	// ferret is true when the server is the FerretDB helper: it has no
	// Decimal128 and no TTL indexes.
	ferret bool
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	uri, err := mongotest.URI()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testURI = uri
	testClient, err = mongo.Connect(options.Client().ApplyURI(testURI).SetTimeout(2 * time.Minute))
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		return 1
	}
	defer testClient.Disconnect(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := testClient.Ping(ctx, nil); err != nil {
		fmt.Fprintln(os.Stderr, "ping:", err)
		return 1
	}
	ferret = mongotest.Ferret(ctx, testClient)
	return m.Run()
}

// uniqueDB returns a database name no other test uses, dropped at the end.
func uniqueDB(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "rsm_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = testClient.Database(name).Drop(ctx)
	})
	return name
}

// ferretBulkSize keeps FerretDB 1.24's update commands under its backend
// pool: it holds a connection per matched replace until the command ends,
// and 50 wedge the server (see scripts/ferretdb/main.go).
const ferretBulkSize = 30

// testConfig is the projector config the server supports: FerretDB has no
// Decimal128 and needs small bulks.
func testConfig() Config {
	c := Config{URI: testURI}
	if ferret {
		c.Decimal = DecimalString
		c.BulkSize = ferretBulkSize
	}
	return c
}

func rules(t testing.TB, match string, tc TableConfig, pk ...string) []cdc.TableRule[TableConfig] {
	t.Helper()
	re, err := cdc.CompileMatch(match)
	if err != nil {
		t.Fatal(err)
	}
	return []cdc.TableRule[TableConfig]{{Match: re, PK: pk, Config: tc}}
}

func newProjector(t testing.TB, rs []cdc.TableRule[TableConfig]) *Projector {
	t.Helper()
	p, err := New(context.Background(), testClient, testConfig(), rs, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// allDocs returns the documents of db.coll sorted by _id.
func allDocs(t testing.TB, db, coll string) []bson.Raw {
	t.Helper()
	ctx := context.Background()
	cur, err := testClient.Database(db).Collection(coll).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.Raw
	for cur.Next(ctx) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func findID(t testing.TB, db, coll string, id any) (bson.Raw, bool) {
	t.Helper()
	raw, err := testClient.Database(db).Collection(coll).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Raw()
	if err == mongo.ErrNoDocuments {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return raw, true
}

// extJSON renders raw as canonical extended JSON for comparisons.
func extJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := bson.MarshalExtJSON(v, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
