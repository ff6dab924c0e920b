package decode

import (
	"testing"

	"github.com/rowsync/rowsync/cdc"
)

func TestLayouts(t *testing.T) {
	var l Layouts
	def := cdc.NewTableDef([]cdc.Column{{Name: "id"}, {Name: "v"}}, []string{"id"})
	a := l.Of(def)
	if a == nil || a != l.Of(def) {
		t.Fatalf("layouts %p, %p: not one per definition", a, l.Of(def))
	}
	if names := a.Names(); len(names) != 2 || names[0] != "id" || names[1] != "v" {
		t.Fatalf("names %v", names)
	}
	if other := l.Of(cdc.NewTableDef([]cdc.Column{{Name: "id"}, {Name: "v"}}, nil)); other == a {
		t.Fatal("two definitions share a layout")
	}
	if dup := l.Of(cdc.NewTableDef([]cdc.Column{{Name: "a"}, {Name: "a"}}, nil)); dup != nil {
		t.Fatal("a layout for a definition naming a column twice")
	}
}
