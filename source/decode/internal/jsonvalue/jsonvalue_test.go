package jsonvalue

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/rowsync/rowsync/cdc"
)

func TestIsNumber(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"0", true}, {"-12", true}, {"1.5", true}, {"1e9", true}, {"-1.0E+10", true}, {"2e-3", true},
		{"", false}, {"-", false}, {"1.", false}, {".5", false}, {"1e", false}, {"1e+", false},
		{"0x10", false}, {`"1"`, false}, {"true", false}, {"1 ", false},
	} {
		if got := IsNumber([]byte(c.in)); got != c.want {
			t.Errorf("IsNumber(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestInteger(t *testing.T) {
	for _, c := range []struct {
		in   string
		want cdc.Value
		ok   bool
	}{
		{"0", int64(0), true},
		{"-9223372036854775808", int64(-9223372036854775808), true},
		{"9223372036854775807", int64(9223372036854775807), true},
		{"18446744073709551615", uint64(18446744073709551615), true},
		{"18446744073709551616", nil, false},
		{"-9223372036854775809", nil, false},
		{"1.5", nil, false},
	} {
		got, ok := Integer(c.in)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("Integer(%q) = %T %v, %v; want %T %v, %v", c.in, got, got, ok, c.want, c.want, c.ok)
		}
	}
}

func TestString(t *testing.T) {
	for _, c := range []struct {
		in, want string
		err      bool
	}{
		{`"abc"`, "abc", false},
		{`""`, "", false},
		{`"a\"b"`, `a"b`, false},
		{`"\u00e9\n"`, "é\n", false},
		{`"中文"`, "中文", false},
		{`12`, "", true},
		{`null`, "", false}, // callers handle null first; json.Unmarshal leaves ""
	} {
		got, err := String(json.RawMessage(c.in))
		if (err != nil) != c.err || got != c.want {
			t.Errorf("String(%s) = %q, %v; want %q, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestJSON(t *testing.T) {
	got, err := JSON(json.RawMessage(`{"b":1,"a":[1,2]}`))
	want, _ := cdc.MySQLJSON([]byte(`{"b":1,"a":[1,2]}`))
	if err != nil || got != want {
		t.Errorf("JSON = %v, %v; want %v", got, err, want)
	}
	if _, err := JSON(json.RawMessage(`{`)); err == nil {
		t.Error("JSON of a broken document: no error")
	}
}

func TestEachMember(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // name=value
		ok   bool
	}{
		{`{}`, nil, true},
		{` { "a" : 1 , "b":"x,}" ,"c":{"d":[1,{"e":"}"}]}} `, []string{`a=1`, `b="x,}"`, `c={"d":[1,{"e":"}"}]}`}, true},
		{`{"a\"b":null,"\u00e9":true}`, []string{`a"b=null`, `é=true`}, true},
		{`{"a":1,"a":2}`, []string{`a=1`, `a=2`}, true},
		{`[1]`, nil, false},
		{`{"a" 1}`, nil, false},
		{`{"a":1 "b":2}`, []string{`a=1`}, false},
		{`{"a":`, nil, false},
		{`{"a":1`, []string{`a=1`}, false},
		{`{a:1}`, nil, false},
		{``, nil, false},
	} {
		var got []string
		err := EachMember([]byte(tc.in), func(name, v []byte) error {
			got = append(got, string(name)+"="+string(v))
			return nil
		})
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("EachMember(%s) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
