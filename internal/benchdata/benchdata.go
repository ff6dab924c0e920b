// Package benchdata holds the workloads that the bench driver sends and
// the packages' own benchmarks decode, so that a micro benchmark measures
// the messages a drain measures.
package benchdata

import (
	"fmt"
	"strconv"
)

// CanalItemsMessage renders one canal flat message
// (canal.mq.flatMessage=true) of a single 10-column row of rs_bench.items,
// as canal 1.1.x writes it: op is INSERT, UPDATE or DELETE, id the row's
// key, seq the message's canal id.
func CanalItemsMessage(op string, id, seq int) []byte {
	status, old := "new", "null"
	if op == "UPDATE" {
		status = "paid"
		old = `[{"status":"new","qty":"` + strconv.Itoa(id%50) + `"}]`
	}
	return fmt.Appendf(nil, `{"data":[{"id":"%d","user_id":"%d","sku":"SKU-%d-XL","qty":"%d","price":"%d.%02d",`+
		`"discount":"0.%02d","status":"%s","note":"gift wrap, deliver after 6pm #%d","created_at":"2024-05-01 10:20:30.123",`+
		`"updated_at":"2024-05-01 10:21:00"}],"database":"rs_bench","es":1714558860000,"id":%d,"isDdl":false,`+
		`"mysqlType":{"id":"bigint(20)","user_id":"int(11)","sku":"varchar(32)","qty":"smallint(6)","price":"decimal(12,2)",`+
		`"discount":"double","status":"varchar(16)","note":"varchar(255)","created_at":"datetime(3)","updated_at":"timestamp"},`+
		`"old":%s,"pkNames":["id"],"sql":"","sqlType":{"id":-5,"user_id":4,"sku":12,"qty":5,"price":3,"discount":8,"status":12,`+
		`"note":12,"created_at":93,"updated_at":93},"table":"items","ts":1714558860123,"type":"%s"}`,
		id, 80000+id%1000, id%9973, id%50+btoi(op == "UPDATE"), id%10000, id%100, id%90, status, id, seq, old, op)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
