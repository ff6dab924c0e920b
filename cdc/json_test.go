package cdc

import "testing"

func TestMySQLJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1,"b":[1,2]}`:                `{"a": 1, "b": [1, 2]}`,
		"{ \"a\" :\n 1 , \"b\": [ ] }":     `{"a": 1, "b": []}`,
		`{"k:,\"x":"v, w: z"}`:             `{"k:,\"x": "v, w: z"}`,
		`[{"x":{"y":null}},true,"\\",1.5]`: `[{"x": {"y": null}}, true, "\\", 1.5]`,
		`"scalar"`:                         `"scalar"`,
	} {
		got, err := MySQLJSON([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("MySQLJSON(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := MySQLJSON([]byte(`{"a":`)); err == nil {
		t.Error("invalid JSON accepted")
	}
}
