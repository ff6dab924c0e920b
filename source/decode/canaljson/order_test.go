package canaljson

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
)

// tableSchemas is a schema source holding fixed definitions.
type tableSchemas struct {
	defs map[string]*cdc.TableDef
	err  error
}

func (s *tableSchemas) Table(_ context.Context, db, table string, _ bool) (*cdc.TableDef, error) {
	return s.defs[db+"."+table], s.err
}

func (s *tableSchemas) Forget(string, string) {}

// TestColumnOrder: event columns follow mysqlType, or the schema source's
// table order when it knows the table (columns it lacks last).
func TestColumnOrder(t *testing.T) {
	// mysqlType lists the columns out of table order.
	msg := `{"data":[{"name":"a","id":"1","extra":"7","email":"e"}],"database":"shop","table":"users","isDdl":false,` +
		`"mysqlType":{"name":"varchar(8)","id":"int","extra":"int","email":"varchar(8)"},"pkNames":["id"],"type":"INSERT"}`
	def := cdc.NewTableDef([]cdc.Column{cdc.ParseColumnType("id", "int"), cdc.ParseColumnType("email", "varchar(8)"),
		cdc.ParseColumnType("name", "varchar(8)")}, []string{"id"})
	cases := []struct {
		name    string
		schemas cdc.Schemas
		want    []string
	}{
		{"no schema source", nil, []string{"name", "id", "extra", "email"}},
		{"schema source", &tableSchemas{defs: map[string]*cdc.TableDef{"shop.users": def}}, []string{"id", "email", "name", "extra"}},
		{"table unknown to the source", &tableSchemas{}, []string{"name", "id", "extra", "email"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := New(decode.Options{Schemas: c.schemas})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second message reuses the cached order
				evs, err := d.Decode(decode.Message{Value: []byte(msg), Topic: "t"})
				if err != nil || len(evs) != 1 {
					t.Fatalf("Decode = %v, %v", evs, err)
				}
				var got []string
				for _, col := range evs[0].Columns {
					got = append(got, col.Name)
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("columns %v, want %v", got, c.want)
				}
			}
		})
	}
	d, _ := New(decode.Options{Schemas: &tableSchemas{err: errors.New("connection refused")}})
	if _, err := d.Decode(decode.Message{Value: []byte(msg), Topic: "t"}); !errors.Is(err, decode.ErrSchemaUnavailable) {
		t.Errorf("schema source down: Decode error %v, want ErrSchemaUnavailable", err)
	}
}
