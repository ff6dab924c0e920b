package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rowsync/rowsync/cdc"
	mongoproj "github.com/rowsync/rowsync/projector/mongo"
)

const usersDDL = `CREATE TABLE $S.users (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL,
	score DECIMAL(8,2), born DATETIME(3) NULL, note TEXT NULL)`

const ordersDDL = `CREATE TABLE $S.orders (user_id INT, order_no VARCHAR(10), amount DECIMAL(8,2),
	PRIMARY KEY (user_id, order_no))`

// fill inserts n users (ids 1..n) and n/2 orders.
func (e *env) fill(n int) {
	e.t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		born := "NULL"
		if i%3 == 0 {
			born = fmt.Sprintf("'2024-01-%02d 10:11:12.345'", i%28+1)
		}
		fmt.Fprintf(&b, "(%d,'user %d ü',%d.25,%s,%s)", i, i, i, born, map[bool]string{true: "'n'", false: "NULL"}[i%2 == 0])
	}
	e.exec("INSERT INTO " + e.schema + ".users VALUES " + b.String())
	b.Reset()
	for i := 1; i <= n/2; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "(%d,'o%d',%d.5)", i%3, i, i)
	}
	e.exec("INSERT INTO " + e.schema + ".orders VALUES " + b.String())
}

func sorted(s []string) []string { slices.Sort(s); return s }

func wantKinds(t *testing.T, what string, r result, want map[string][]string) {
	t.Helper()
	got := r.kinds()
	for k := range got {
		got[k] = sorted(got[k])
	}
	for k := range want {
		want[k] = sorted(want[k])
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: mismatches %v, want %v\n%+v", what, got, want, r.list)
	}
}

// TestRedis: a table three times the chunk size, projected, then a hash
// corrupted, one with a stray field, one deleted, one left behind by a
// row deleted in MySQL and one that never had a row.
func TestRedis(t *testing.T) {
	e := newEnv(t, false, usersDDL, ordersDDL)
	e.fill(24)
	e.project("users")
	e.project("orders")
	if r := e.verifyRedis("users", 7); !r.OK() || r.Rows != 24 || len(r.list) != 0 {
		t.Fatalf("clean table: %v %+v", r.Stats, r.list)
	}
	if r := e.verifyRedis("orders", 5); !r.OK() || r.Rows != 12 {
		t.Fatalf("clean orders: %v %+v", r.Stats, r.list)
	}
	ctx := context.Background()
	e.rdb.HSet(ctx, e.key("users", 3), "name", "evil")
	e.rdb.HSet(ctx, e.key("users", 9), "bogus", "1")
	e.rdb.Del(ctx, e.key("users", 5))
	e.rdb.HSet(ctx, e.key("users", 999), "id", "999", "name", "ghost")
	e.exec("DELETE FROM " + e.schema + ".users WHERE id = 7")
	// not rows: another type at a row's pattern, a tombstone-like side key
	e.rdb.Set(ctx, e.key("users", "x"), "a string", 0)

	r := e.verifyRedis("users", 7)
	if r.Rows != 23 || r.Missing != 1 || r.Different != 2 || r.Extra != 2 || r.OK() {
		t.Fatalf("stats %v", r.Stats)
	}
	wantKinds(t, "users", r, map[string][]string{
		Missing: {"5"}, Different: {"3", "9"}, Extra: {"7", "999"},
	})
	for _, m := range r.list {
		if m.Kind == Different && m.PK[0] == "3" && m.Detail != `name: "evil" (want "user 3 ü")` {
			t.Errorf("detail of 3: %s", m.Detail)
		}
	}

	// composite key: {pk} is "user_id:order_no"
	e.rdb.Del(ctx, e.key("orders", 1, "o1"))
	e.rdb.HSet(ctx, e.key("orders", 9, "zz"), "user_id", "9", "order_no", "zz")
	wantKinds(t, "orders", e.verifyRedis("orders", 5), map[string][]string{
		Missing: {"1,o1"}, Extra: {"9,zz"},
	})
}

// TestRedisUnchecked: a hash whose fields do not hold the primary key
// cannot be matched to a row: reported as unchecked, not as extra.
func TestRedisUnchecked(t *testing.T) {
	e := newEnv(t, false, usersDDL, ordersDDL)
	e.fill(4)
	e.project("users")
	e.rdb.HSet(context.Background(), e.key("users", 77), "name", "no id field")
	r := e.verifyRedis("users", 2)
	if !r.OK() || r.Unchecked != 1 {
		t.Fatalf("%v %+v", r.Stats, r.list)
	}
}

// TestMongo: the same corruptions on documents, on a scalar _id and on a
// composite one (a sub-document of the key fields).
func TestMongo(t *testing.T) {
	e := newEnv(t, true, usersDDL, ordersDDL)
	e.fill(24)
	e.project("users")
	e.project("orders")
	if r := e.verifyMongo("users", 7); !r.OK() || r.Rows != 24 || len(r.list) != 0 {
		t.Fatalf("clean table: %v %+v", r.Stats, r.list)
	}
	if r := e.verifyMongo("orders", 5); !r.OK() || r.Rows != 12 || len(r.list) != 0 {
		t.Fatalf("clean orders: %v %+v", r.Stats, r.list)
	}
	ctx := context.Background()
	users := e.coll("users")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := users.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(3)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "evil"}}}})
	must(err)
	// same number, other BSON type: a difference
	_, err = users.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(9)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "id", Value: int64(9)}}}})
	must(err)
	_, err = users.DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(5)}})
	must(err)
	_, err = users.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(999)}, {Key: "name", Value: "ghost"}})
	must(err)
	e.exec("DELETE FROM " + e.schema + ".users WHERE id = 7")

	r := e.verifyMongo("users", 7)
	if r.Rows != 23 || r.Missing != 1 || r.Different != 2 || r.Extra != 2 {
		t.Fatalf("stats %v %+v", r.Stats, r.list)
	}
	wantKinds(t, "users", r, map[string][]string{
		Missing: {"5"}, Different: {"3", "9"}, Extra: {"7", "999"},
	})

	orders := e.coll("orders")
	_, err = orders.DeleteOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "user_id", Value: int32(1)}, {Key: "order_no", Value: "o1"}}}})
	must(err)
	_, err = orders.InsertOne(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "user_id", Value: int32(9)}, {Key: "order_no", Value: "zz"}}}})
	must(err)
	_, err = orders.InsertOne(ctx, bson.D{{Key: "_id", Value: "not a key"}})
	must(err)
	r = e.verifyMongo("orders", 5)
	wantKinds(t, "orders", r, map[string][]string{
		Missing: {"1,o1"}, Extra: {"9,zz"}, Unchecked: {""},
	})
}

// TestMongoRuleShapes: an id template, a renamed and an excluded column,
// the version guard (its field left out of the comparison, a guarded
// delete's tombstone counted as no document) and metadata.
func TestMongoRuleShapes(t *testing.T) {
	e := newEnv(t, true, usersDDL, ordersDDL)
	e.fill(12)
	match, err := cdc.CompileMatch(e.schema + `\.users`)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mongoproj.Config{URI: mongoURI}
	if ferret {
		cfg.Decimal, cfg.BulkSize = mongoproj.DecimalString, 30
	}
	e.mongo, err = mongoproj.New(context.Background(), mongoClient(t), cfg, []cdc.TableRule[mongoproj.TableConfig]{{Match: match,
		Config: mongoproj.TableConfig{ID: "u-{id}", Rename: map[string]string{"id": "uid", "name": "full_name"},
			Exclude: []string{"note"}, VersionField: "_v", Metadata: "_meta"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// the rows as the binlog path writes them: guarded, with a version
	ctx := context.Background()
	cur, err := e.rf.Scan(ctx, e.schema, "users", 100)
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := cur.Next(ctx)
	cur.Close()
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]cdc.Event, len(rows))
	for i, r := range rows {
		evs[i] = cdc.Event{DB: e.schema, Table: "users", Op: cdc.Insert, PK: cur.PK(), After: r, Columns: cur.Columns(),
			Pos: cdc.Position{Text: "f:1", Version: 100}}
	}
	if err := e.mongo.Apply(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// row 7 deleted in MySQL and, guarded, in MongoDB: a tombstone remains
	e.exec("DELETE FROM " + e.schema + ".users WHERE id = 7")
	del := cdc.Event{DB: e.schema, Table: "users", Op: cdc.Delete, PK: cur.PK(), Before: rows[6], Columns: cur.Columns(),
		Pos: cdc.Position{Text: "f:2", Version: 200}}
	if err := e.mongo.Apply(ctx, []cdc.Event{del}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.coll("users").CountDocuments(ctx, bson.D{{Key: "_id", Value: "u-7"}, {Key: mongoproj.DeletedField, Value: true}}); err != nil || n != 1 {
		t.Fatalf("tombstone of u-7: %d %v", n, err)
	}
	if r := e.verifyMongo("users", 5); !r.OK() || r.Rows != 11 || len(r.list) != 0 {
		t.Fatalf("clean: %v %+v", r.Stats, r.list)
	}

	users := e.coll("users")
	if _, err := users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "u-2"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "note", Value: "excluded column"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.InsertOne(ctx, bson.D{{Key: "_id", Value: "u-50"}, {Key: "uid", Value: int32(50)}}); err != nil {
		t.Fatal(err)
	}
	// a document whose key field is gone cannot be matched to a row
	if _, err := users.InsertOne(ctx, bson.D{{Key: "_id", Value: "u-x"}}); err != nil {
		t.Fatal(err)
	}
	// a tombstone where MySQL has the row: missing
	if _, err := users.UpdateOne(ctx, bson.D{{Key: "_id", Value: "u-3"}}, bson.D{{Key: "$set", Value: bson.D{{Key: mongoproj.DeletedField, Value: true}}}}); err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "users", e.verifyMongo("users", 5), map[string][]string{
		Different: {"2"}, Extra: {"50"}, Unchecked: {""}, Missing: {"3"},
	})
}

type otherSink struct{ cdc.Sink }

func TestSinkUnsupported(t *testing.T) {
	if _, err := Sink(context.Background(), nil, otherSink{}, "d", "t", Options{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v", err)
	}
}
