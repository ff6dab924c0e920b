package config

import (
	"strings"
	"testing"
)

func TestRouterFirstMatchWins(t *testing.T) {
	raw := []byte(`name: t
source: {binlog: {addr: "127.0.0.1:3307"}}
redis: {}
mysql: {dsn: "root@tcp(127.0.0.1:3306)/"}
tables:
  - {match: shop.users, pk: [uid], redis_hash: {}}
  - {match: 'shop\.cache_only', invalidate: {keys: ["page:{id}"]}}
  - {match: 'shop\..*', pk: [id], refetch: true, redis_hash: {}, invalidate: {keys: ["row:{id}"]}}
`)
	c, err := Parse(raw, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Router()
	hash := func(t Table) bool { return t.RedisHash != nil }
	inv := func(t Table) bool { return t.Invalidate != nil }
	for _, tc := range []struct {
		db, table   string
		idx         int
		pk          string
		refetch     bool
		hash, inval bool
	}{
		{"shop", "users", 0, "uid", false, true, false},
		{"shop", "cache_only", 1, "", false, false, true}, // a later shop\..* never adds a hash
		{"shop", "orders", 2, "id", true, true, true},
		{"other", "users", -1, "", false, false, false},
	} {
		name := tc.db + "." + tc.table
		if got, _ := r.Entry(tc.db, tc.table); got != tc.idx {
			t.Errorf("Entry(%s) = %d, want %d", name, got, tc.idx)
		}
		if got := strings.Join(r.KeyColumns(tc.db, tc.table), ","); got != tc.pk {
			t.Errorf("KeyColumns(%s) = %q, want %q", name, got, tc.pk)
		}
		if got := r.Refetch(tc.db, tc.table); got != tc.refetch {
			t.Errorf("Refetch(%s) = %v, want %v", name, got, tc.refetch)
		}
		if got := r.Routes(tc.db, tc.table, hash); got != tc.hash {
			t.Errorf("Routes(%s, redis_hash) = %v, want %v", name, got, tc.hash)
		}
		if got := r.Routes(tc.db, tc.table, inv); got != tc.inval {
			t.Errorf("Routes(%s, invalidate) = %v, want %v", name, got, tc.inval)
		}
	}
	rules := Rules(r, func(t Table) *Table { return &t })
	if len(rules) != 3 || rules[1].Match.String() != `^(?:shop\.cache_only)$` || rules[2].PK[0] != "id" {
		t.Fatalf("rules = %+v", rules)
	}
}

func TestRouterHiddenColumns(t *testing.T) {
	raw := []byte(`name: t
source: {binlog: {addr: "127.0.0.1:3307"}}
redis: {}
mongo: {uri: "mongodb://127.0.0.1:27017"}
tables:
  - {match: shop.users, redis_hash: {exclude: [password_hash]}, mongo: {include: [id, email, password_hash]}}
  - {match: shop.orders, redis_hash: {}}
`)
	c, err := Parse(raw, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Router()
	hide := r.HiddenColumns("shop", "users")
	for col, want := range map[string]bool{"password_hash": true, "avatar": true, "email": false, "id": false} {
		if hide(col) != want {
			t.Errorf("users.%s hidden = %v, want %v", col, !want, want)
		}
	}
	if r.HiddenColumns("shop", "orders") != nil || r.HiddenColumns("other", "x") != nil {
		t.Error("a table without include/exclude hides columns")
	}
}
