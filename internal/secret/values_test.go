package secret

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
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

func TestFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	value, file := "", f
	if err := FromFile(&value, &file, "password", "password_file"); err != nil || value != "s3cret" || file != "" {
		t.Fatalf("value %q file %q err %v", value, file, err)
	}
	// resolved: validating again keeps the value
	if err := FromFile(&value, &file, "password", "password_file"); err != nil || value != "s3cret" {
		t.Fatalf("again: value %q err %v", value, err)
	}
	value, file = "inline", f
	if err := FromFile(&value, &file, "password", "password_file"); err == nil || err.Error() != "password_file: set password or password_file, not both" {
		t.Fatalf("both: %v", err)
	}
	value, file = "", f+".missing"
	if err := FromFile(&value, &file, "password", "password_file"); err == nil || !strings.HasPrefix(err.Error(), "password_file: open ") {
		t.Fatalf("missing: %v", err)
	}
}

func TestInValue(t *testing.T) {
	f := filepath.Join(t.TempDir(), "uri")
	if err := os.WriteFile(f, []byte("mongodb://u:file-pw@h/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := InValue("mongodb://u:inline-pw@h/", f, URLPassword)
	if !slices.Contains(got, "inline-pw") || !slices.Contains(got, "file-pw") {
		t.Fatalf("got %q", got)
	}
	if got := InValue("", "", URLPassword); len(got) != 0 {
		t.Fatalf("nothing set: %q", got)
	}
}
