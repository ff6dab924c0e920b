package canaljson

import (
	"slices"
	"testing"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/source/decode"
)

// TestRowShapes decodes data rows of one table whose members come in the
// mysqlType order, in another order, fewer, with a column mysqlType lacks
// and with a member repeated, each message twice and then all again: every
// row holds its members in the message's order (a repeated member keeps
// its first place and its last value, as it did when rows were maps), and
// rows of one member order share one layout.
func TestRowShapes(t *testing.T) {
	msg := func(rows string) string {
		return `{"data":[` + rows + `],"database":"shop","table":"t","type":"INSERT","isDdl":false,"es":1,` +
			`"mysqlType":{"id":"int(11)","a":"varchar(8)","b":"int(11)"},"pkNames":["id"]}`
	}
	cases := []struct {
		name, rows string
		want       []*cdc.Row
	}{
		{"table order", `{"id":"1","a":"x","b":"2"},{"id":"2","a":"y","b":null}`,
			[]*cdc.Row{cdc.RowOf("id", int64(1), "a", "x", "b", int64(2)), cdc.RowOf("id", int64(2), "a", "y", "b", nil)}},
		{"other order", `{"b":"3","id":"3","a":"z"}`, []*cdc.Row{cdc.RowOf("b", int64(3), "id", int64(3), "a", "z")}},
		{"fewer", `{"id":"4","b":"5"}`, []*cdc.Row{cdc.RowOf("id", int64(4), "b", int64(5))}},
		{"unknown column", `{"id":"5","a":"v","b":"6","c":"7"}`, []*cdc.Row{cdc.RowOf("id", int64(5), "a", "v", "b", int64(6), "c", "7")}},
		{"repeated member", `{"id":"6","a":"first","b":"1","a":"last"},{"id":"7","a":"q","b":"2"}`,
			[]*cdc.Row{cdc.RowOf("id", int64(6), "a", "last", "b", int64(1)), cdc.RowOf("id", int64(7), "a", "q", "b", int64(2))}},
		// the names a row is read expecting (the last shape) are compared
		// with the input: an escaped, spaced or longer name is read as such
		{"escaped names", `{"id":"8","\u0061":"e","b":"9"},{"\u0069d":"9","a":"f","b":"1"}`,
			[]*cdc.Row{cdc.RowOf("id", int64(8), "a", "e", "b", int64(9)), cdc.RowOf("id", int64(9), "a", "f", "b", int64(1))}},
		{"spaces", `{ "id" : "10" ,` + "\n" + ` "a":"s", "b" :"1" }`, []*cdc.Row{cdc.RowOf("id", int64(10), "a", "s", "b", int64(1))}},
		{"longer name", `{"id":"11","ab":"x","b":"1"}`, []*cdc.Row{cdc.RowOf("id", int64(11), "ab", "x", "b", int64(1))}},
		{"shorter name", `{"i":"12","a":"x","b":"1","id":"12"}`, []*cdc.Row{cdc.RowOf("i", "12", "a", "x", "b", int64(1), "id", int64(12))}},
	}
	d, _ := New(decode.Options{})
	var pool cdc.RowPool
	for round := range 2 {
		for _, tc := range cases {
			for range 2 {
				rows := pool.Rows()
				evs, err := d.Decode(decode.Message{Value: []byte(msg(tc.rows)), Rows: rows})
				if err != nil {
					t.Fatalf("round %d %s: %v", round, tc.name, err)
				}
				if len(evs) != len(tc.want) {
					t.Fatalf("round %d %s: %d events", round, tc.name, len(evs))
				}
				for i, ev := range evs {
					if !ev.After.Equal(tc.want[i]) || !slices.Equal(ev.After.Names(), tc.want[i].Names()) {
						t.Errorf("round %d %s row %d: %v, want %v", round, tc.name, i, ev.After, tc.want[i])
					}
				}
				if tc.name == "table order" && evs[0].After.Layout() != evs[1].After.Layout() {
					t.Errorf("round %d: rows of one member order have layouts of their own", round)
				}
				rows.Recycle()
			}
		}
	}
}

// TestMemberOrder decodes one change written with its top-level members
// in canal's order, in another, spaced, escaped and with unknown members,
// in turn: each gives the same events (a message's member names are read
// expecting the last message's, see message.members).
func TestMemberOrder(t *testing.T) {
	msgs := []string{
		`{"data":[{"id":"1","a":"x"}],"database":"shop","table":"t","type":"INSERT","isDdl":false,"mysqlType":{"id":"int","a":"varchar(8)"},"pkNames":["id"]}`,
		`{"type":"INSERT","pkNames":["id"],"table":"t","database":"shop","data":[{"id":"1","a":"x"}],"mysqlType":{"id":"int","a":"varchar(8)"}}`,
		` { "data" : [{"id":"1","a":"x"}] , "database":"shop", "tab":1, "table":"t","type":"INSERT","isDdl":false,"mysqlType":{"id":"int","a":"varchar(8)"},"pkNames":["id"] } `,
		`{"d\u0061ta":[{"id":"1","a":"x"}],"database":"shop","tablex":"u","table":"t","type":"INSERT","ty":"x","mysqlType":{"id":"int","a":"varchar(8)"},"pkNames":["id"]}`,
	}
	d, _ := New(decode.Options{})
	want := cdc.RowOf("id", int64(1), "a", "x")
	for round := range 3 {
		for i, m := range msgs {
			evs, err := d.Decode(decode.Message{Value: []byte(m)})
			if err != nil || len(evs) != 1 || evs[0].DB != "shop" || evs[0].Table != "t" || evs[0].Op != cdc.Insert || !evs[0].After.Equal(want) {
				t.Fatalf("round %d message %d: %+v %v", round, i, evs, err)
			}
		}
	}
}
