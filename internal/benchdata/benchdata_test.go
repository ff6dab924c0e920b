package benchdata

import (
	"encoding/json"
	"testing"
)

// TestCanalItemsMessage: each op renders valid JSON with the row's key,
// the message's canal id and, for an update only, the old values.
func TestCanalItemsMessage(t *testing.T) {
	for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
		var m struct {
			Data []map[string]string `json:"data"`
			Old  []map[string]string `json:"old"`
			ID   int                 `json:"id"`
			Type string              `json:"type"`
		}
		if err := json.Unmarshal(CanalItemsMessage(op, 42, 7), &m); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if m.Type != op || m.ID != 7 || len(m.Data) != 1 || m.Data[0]["id"] != "42" || len(m.Data[0]) != 10 || (len(m.Old) == 1) != (op == "UPDATE") {
			t.Fatalf("%s: %+v", op, m)
		}
	}
}
