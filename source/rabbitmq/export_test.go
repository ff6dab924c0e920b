package rabbitmq

import (
	"net"
)

// AckFrames returns how many basic.ack/basic.nack frames the source sent.
func (s *Source) AckFrames() int64 { return s.ackFrames.Load() }

// Conn returns the current connection's local address and socket, or
// false before the first connection.
func (s *Source) Conn() (local string, raw net.Conn, ok bool) {
	l := s.link.Load()
	if l == nil {
		return "", nil, false
	}
	return l.conn.LocalAddr().String(), l.raw, true
}

// Generation returns the generation of the channel being consumed: 1 for
// the first, +1 for every reopened channel.
func (s *Source) Generation() uint64 { return s.gen.Load() }
