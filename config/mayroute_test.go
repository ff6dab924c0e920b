package config

import "testing"

func TestMayRouteDB(t *testing.T) {
	c := &Config{Tables: []Table{{Match: `shop\..*`}, {Match: `blog\.posts`}, {Match: `(a|b)\.t`}}}
	r := c.Router()
	for db, want := range map[string]bool{"shop": true, "blog": true, "a": true, "other": true} {
		if got := r.MayRouteDB(db); got != want {
			t.Errorf("MayRouteDB(%q) = %v, want %v", db, got, want)
		}
	}
	c = &Config{Tables: []Table{{Match: `shop\..*`}, {Match: `blog\.posts`}}}
	r = c.Router()
	for db, want := range map[string]bool{"shop": true, "blog": true, "shopx": false, "sho": false, "rw_test_1": false} {
		if got := r.MayRouteDB(db); got != want {
			t.Errorf("MayRouteDB(%q) = %v, want %v", db, got, want)
		}
	}
}
