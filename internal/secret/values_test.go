package secret

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestValues(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := File(pw); !slices.Equal(got, []string{"from-a-file"}) {
		t.Errorf("File = %q", got)
	}
	if got := File(""); got != nil {
		t.Errorf("File(\"\") = %q", got)
	}
	if got := URLPassword("amqp://u:p%40ss%20w@h/"); !slices.Contains(got, "p@ss w") || !slices.Contains(got, "p%40ss+w") {
		t.Errorf("URLPassword = %q", got)
	}
	if got := URLPassword("amqp://u@h/"); got != nil {
		t.Errorf("URLPassword without one = %q", got)
	}
	if got := DSNPassword("root:topsecret@tcp(db:3306)/"); !slices.Equal(got, []string{"topsecret"}) {
		t.Errorf("DSNPassword = %q", got)
	}
	if got := DSNPassword("root@tcp(db:3306)/"); got != nil {
		t.Errorf("DSNPassword without one = %q", got)
	}
}
