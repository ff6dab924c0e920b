package main

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rowsync/rowsync/config"
)

func mongoChecks(cfg *config.Config) []check {
	if cfg.Mongo == nil {
		return nil
	}
	return []check{{"mongo", func(ctx context.Context) error {
		client, err := mongo.Connect(options.Client().ApplyURI(cfg.Mongo.URI))
		if err != nil {
			return err
		}
		defer client.Disconnect(context.Background())
		return client.Ping(ctx, nil)
	}}}
}
