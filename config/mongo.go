package config

import mongoproj "github.com/rowsync/rowsync/projector/mongo"

// Mongo is the MongoDB connection and projector-wide options.
type Mongo = mongoproj.Config

// MongoTable is the per-table mongo block.
type MongoTable = mongoproj.TableConfig
