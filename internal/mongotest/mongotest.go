// Package mongotest gives tests a MongoDB-compatible server:
// ROWSYNC_TEST_MONGO_URI when set, else the FerretDB that
// scripts/ferretdb.sh starts on 127.0.0.1:$ROWSYNC_TEST_FERRETDB_PORT
// (default 27018, so a demo on 27017 is left alone). The server is left
// running for the next test process; every test uses its own database and
// drops it.
package mongotest

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// URI returns the test server's URI, starting FerretDB if need be.
func URI() (string, error) {
	if uri := os.Getenv("ROWSYNC_TEST_MONGO_URI"); uri != "" {
		return uri, nil
	}
	port := cmp.Or(os.Getenv("ROWSYNC_TEST_FERRETDB_PORT"), "27018")
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "ferretdb.sh")
	cmd := exec.Command("bash", script, "start")
	cmd.Env = append(os.Environ(), "ROWSYNC_FERRETDB_PORT="+port)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("scripts/ferretdb.sh start: %w\n%s", err, out)
	}
	return "mongodb://127.0.0.1:" + port + "/?directConnection=true", nil
}

// Ferret reports whether the server behind c is FerretDB (no Decimal128,
// no TTL indexes, small bulks).
func Ferret(ctx context.Context, c *mongo.Client) bool {
	var info bson.M
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false
	}
	_, ok := info["ferretdbVersion"]
	return ok
}
