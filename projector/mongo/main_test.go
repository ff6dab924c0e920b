package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/cdc"
)

// The tests run against a MongoDB-compatible server: ROWSYNC_TEST_MONGO_URI
// when set, else FerretDB started by scripts/ferretdb.sh on
// 127.0.0.1:$ROWSYNC_TEST_FERRETDB_PORT (default 27018, so a demo on 27017
// is left alone). Every test uses its own database and drops it.
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
	testURI = os.Getenv("ROWSYNC_TEST_MONGO_URI")
	if testURI == "" {
		port := os.Getenv("ROWSYNC_TEST_FERRETDB_PORT")
		if port == "" {
			port = "27018"
		}
		root, err := repoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "ferretdb.sh"), "start")
		cmd.Env = append(os.Environ(), "ROWSYNC_FERRETDB_PORT="+port)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "start ferretdb:", err)
			return 1
		}
		testURI = "mongodb://127.0.0.1:" + port + "/?directConnection=true"
	}
	var err error
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
	var info bson.M
	if err := testClient.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err == nil {
		_, ferret = info["ferretdbVersion"]
	}
	return m.Run()
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/rowsync/rowsync\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("repository root not found above %s", dir)
		}
		dir = parent
	}
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
