package main

import (
	"slices"
	"testing"
)

func TestTopicList(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []topicSpec
		wantErr bool
	}{
		{"canal:3", []topicSpec{{"canal", 3}}, false},
		{"canal:3, maxwell ,", []topicSpec{{"canal", 3}, {"maxwell", -1}}, false},
		{"canal:0", nil, true},
		{"canal:x", nil, true},
		{":3", nil, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var l topicList
			err := l.Set(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !slices.Equal(l, tc.want) {
				t.Errorf("got %v, want %v", l, tc.want)
			}
		})
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "nohost"},
		{"-addr", "127.0.0.1:99999"},
		{"-partitions", "0"},
		{"-log-level", "loud"},
		{"extra"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%q): no error", args)
		}
	}
}
