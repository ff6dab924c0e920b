package config

import (
	"strings"
	"testing"
)

func TestRouterFirstMatchWins(t *testing.T) {
	raw := []byte(`name: t
source: {tap: {host: h}}
store: {}
tables:
  - {match: shop.users, pk: [uid], hash: {}}
  - {match: 'shop\.cache_only', purge: {key: "page:{id}"}}
  - {match: 'shop\..*', pk: [id], refetch: true, hash: {}, purge: {key: "row:{id}"}}
`)
	c, err := Parse(raw, env(nil), testRegistry)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Router()
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
		if got := r.Routes(tc.db, tc.table, "hash"); got != tc.hash {
			t.Errorf("Routes(%s, hash) = %v, want %v", name, got, tc.hash)
		}
		if got := r.Routes(tc.db, tc.table, "purge"); got != tc.inval {
			t.Errorf("Routes(%s, purge) = %v, want %v", name, got, tc.inval)
		}
	}
	hashRules, purgeRules := Rules[hashRule](r, "hash"), Rules[hashRule](r, "purge")
	if len(hashRules) != 2 || hashRules[1].PK[0] != "id" || len(purgeRules) != 2 ||
		purgeRules[0].Match.String() != `^(?:shop\.cache_only)$` || purgeRules[1].Config.Key != "row:{id}" {
		t.Fatalf("rules = %+v / %+v", hashRules, purgeRules)
	}
	if !r.Uses("hash") || r.Uses("mongo") {
		t.Fatal("Uses")
	}
}

func TestRouterHiddenColumns(t *testing.T) {
	raw := []byte(`name: t
source: {tap: {host: h}}
store: {}
tables:
  - {match: shop.users, hash: {exclude: [password_hash]}, purge: {include: [id, email, password_hash]}}
  - {match: shop.orders, hash: {}}
`)
	c, err := Parse(raw, env(nil), testRegistry)
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
