//go:build !unix

package redis

import "net"

// newConnCheck returns nil: without a non-blocking peek, a connection the
// server closed while idle is found by the next chunk's failed I/O.
func newConnCheck(net.Conn) func() error { return nil }
