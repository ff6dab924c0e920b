package config

import "errors"

// Mongo is the MongoDB connection. (Temporary: replaced by the projector's
// own Config when projector/mongo lands.)
type Mongo struct {
	URI string `yaml:"uri"`
}

func (m *Mongo) validate() error {
	if m.URI == "" {
		return errors.New("uri: required")
	}
	return nil
}

// MongoTable is the per-table mongo block.
type MongoTable struct {
	Database   string `yaml:"database"`
	Collection string `yaml:"collection"`
}

func (m *MongoTable) validate() error { return nil }
