package binlog

import (
	"context"
	"database/sql"

	"github.com/go-sql-driver/mysql"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/secret"
	"github.com/rowsync/rowsync/mysqlmeta"
)

// Ready connects to the server with the source's TLS and checks the
// settings a row-based binlog tap needs (mysqlmeta.CheckBinlogFor), every
// wrong one listed; row images may lack columns when AllRefetched.
func (c Config) Ready(ctx context.Context) error {
	dsn := mysqlmeta.DSN(c.Addr, c.User, c.Password)
	tc, err := c.TLSClient()
	if err != nil {
		return err
	}
	dsn.TLS = tc
	connector, err := mysql.NewConnector(dsn)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	return mysqlmeta.CheckBinlogFor(ctx, db, mysqlmeta.BinlogNeeds{PartialImages: c.AllRefetched})
}

// Check is the source's connection test for `rowsync check`: Ready.
func (c Config) Check(key string) (string, cdc.Pinger) {
	return key + " " + c.Addr, cdc.PingFunc(c.Ready)
}

// Cleartext lists where the password would travel in clear (no TLS).
func (c Config) Cleartext() []secret.Cleartext {
	if c.Password == "" || c.TLS.Enabled || c.Addr == "" {
		return nil
	}
	return []secret.Cleartext{{Addr: c.Addr, What: "the password"}}
}
