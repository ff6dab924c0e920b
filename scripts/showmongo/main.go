// Command showmongo prints the documents of a MongoDB collection as
// relaxed extended JSON, one per line, sorted by _id: the demo uses it to
// show what rowsync wrote (this machine has no mongo shell).
//
//	go run ./scripts/showmongo -uri mongodb://127.0.0.1:27017 -db shop -coll users
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func main() {
	uri := flag.String("uri", "mongodb://127.0.0.1:27017", "MongoDB URI")
	db := flag.String("db", "", "database")
	coll := flag.String("coll", "", "collection")
	drop := flag.Bool("drop", false, "drop the database instead of showing it")
	flag.Parse()
	if err := show(*uri, *db, *coll, *drop); err != nil {
		fmt.Fprintln(os.Stderr, "showmongo:", err)
		os.Exit(1)
	}
}

func show(uri, db, coll string, drop bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer client.Disconnect(context.Background())
	if drop {
		return client.Database(db).Drop(ctx)
	}
	cur, err := client.Database(db).Collection(coll).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		out, err := bson.MarshalExtJSON(cur.Current, false, false)
		if err != nil {
			return err
		}
		fmt.Println(string(out))
	}
	return cur.Err()
}
