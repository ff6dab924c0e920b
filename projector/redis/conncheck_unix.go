//go:build unix

package redis

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
)

// errUnexpectedRead reports bytes waiting on an idle connection: no
// reply is due, so its stream is not in step.
var errUnexpectedRead = errors.New("unexpected bytes on an idle connection")

// newConnCheck returns a check of an idle connection: a non-blocking read
// of its socket finds a close by the server (EOF) or bytes no request
// asked for. Nil when nc has no socket to look at. The check allocates
// nothing per call.
func newConnCheck(nc net.Conn) func() error {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var (
		buf [1]byte
		res error
	)
	peek := func(fd uintptr) bool {
		n, err := syscall.Read(int(fd), buf[:])
		switch {
		case n == 0 && err == nil:
			res = io.EOF
		case n > 0:
			res = errUnexpectedRead
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			res = nil
		default:
			res = err
		}
		return true // never wait for readability
	}
	return func() error {
		if err := raw.Read(peek); err != nil {
			return err
		}
		return res
	}
}
