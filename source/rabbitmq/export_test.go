package rabbitmq

import (
	"net"
)

// AckFrames returns how many basic.ack/basic.nack frames the source sent.
func (s *Source) AckFrames() int64 { return s.ackFrames.Load() }

// Conn returns the first consumer's current connection's local address
// and socket, or false before the first connection.
func (s *Source) Conn() (local string, raw net.Conn, ok bool) {
	l := s.lanes[0].link.Load()
	if l == nil {
		return "", nil, false
	}
	return l.conn.LocalAddr().String(), l.raw, true
}

// Generation returns the generation of the first consumer's channel: 1
// for the first, +1 for every reopened channel.
func (s *Source) Generation() uint64 { return s.lanes[0].gen.Load() }

// RowPoolStats returns how many rows the source's decoding reused and
// made.
func (s *Source) RowPoolStats() (reused, made uint64) { return s.rowPool.Stats() }
