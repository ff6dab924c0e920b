package cdc

import "testing"

func TestTableDefLayout(t *testing.T) {
	def := NewTableDef([]Column{{Name: "id"}, {Name: "v"}}, []string{"id"})
	a := def.Layout()
	if a == nil || a != def.Layout() || !a.Shared() {
		t.Fatalf("layouts %p, %p: not one shared layout per definition", a, def.Layout())
	}
	if names := a.Names(); len(names) != 2 || names[0] != "id" || names[1] != "v" {
		t.Fatalf("names %v", names)
	}
	if other := NewTableDef([]Column{{Name: "id"}, {Name: "v"}}, nil).Layout(); other == a {
		t.Fatal("two definitions share a layout")
	}
	if dup := NewTableDef([]Column{{Name: "a"}, {Name: "a"}}, nil).Layout(); dup != nil {
		t.Fatal("a layout for a definition naming a column twice")
	}
	var none *TableDef
	if none.Layout() != nil || (&TableDef{}).Layout() != nil {
		t.Fatal("a nil or zero definition has a layout")
	}
}
