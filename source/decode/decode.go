// Package decode turns the messages that CDC producers publish (canal
// flat JSON, canal protobuf, Maxwell, Debezium, JSON lines) into cdc.Events.
// The Kafka and RabbitMQ sources share it; `rowsync decode` exposes it.
package decode

import (
	"fmt"

	"github.com/rowsync/rowsync/cdc"
)

// Message is one transport message.
type Message struct {
	// Key and Value are the message key (Kafka; nil for AMQP) and body.
	Key, Value []byte
	// Topic, Partition and Offset locate a Kafka record; for AMQP Topic is
	// the queue and Offset the delivery tag.
	Topic     string
	Partition int32
	Offset    int64
	// Headers are the transport headers, where the transport has them.
	Headers map[string][]byte
	// Rows, when not nil, gives the rows the decoder makes: a decoder
	// takes each Row it returns from Rows.Of, Get or Clone instead of
	// making it, and the source recycles them once the message's batch is
	// acked (cdc.RowPool). nil: they make new rows.
	Rows *cdc.BatchRows
	// Events, when it has room beyond its length, is the caller's slice
	// of events (a source's batch): a decoder may build msg's events in
	// that room, Events[len(Events):cap(Events)], and return them there,
	// so that the caller extends its slice over them (Append) instead of
	// copying a slice made for one message. Decoders never change
	// Events[:len(Events)], and may ignore Events altogether.
	Events []cdc.Event
}

// Append returns dst with evs, the events Decode returned for a message
// whose Events was dst, appended: when the decoder built them in dst's
// room it only extends dst over them, otherwise it copies them, as append
// does.
func Append(dst, evs []cdc.Event) []cdc.Event {
	if n := len(dst); len(evs) > 0 && cap(dst)-n >= len(evs) && &dst[:n+1][n] == &evs[0] {
		return dst[:n+len(evs)]
	}
	return append(dst, evs...)
}

// Decoder decodes one format. Implementations are safe for concurrent
// use unless the constructor says otherwise.
type Decoder interface {
	// Decode returns the row changes of msg in source order. A message that
	// carries no row change (transaction marker, DDL, tombstone) gives no
	// events and a nil error. An error means the message is undecodable; it
	// names what is wrong and goes to the dead letter, except an error
	// marked ErrSchemaUnavailable, which is transient: the message is
	// decoded again once the schema source answers (Retry).
	//
	// The events returned may lie in msg.Events' room beyond its length
	// (see Message.Events): the caller adds them to its slice with Append.
	Decode(msg Message) ([]cdc.Event, error)
}

// Guard wraps d so that a panic inside Decode becomes an error: the
// message is rejected to the dead letter and the stream goes on, whatever
// the input does to a decoder. The sources wrap their decoder with it.
func Guard(d Decoder) Decoder {
	if _, ok := d.(*guarded); ok {
		return d
	}
	return &guarded{d}
}

type guarded struct{ d Decoder }

func (g *guarded) Decode(msg Message) (evs []cdc.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			evs, err = nil, fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return g.d.Decode(msg)
}
