package kafka

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestBufferedConnDeadline: a read deadline passing on a buffered
// connection is reported once, as on the bare connection, and the next
// read (with a new deadline) gets the bytes that arrive later; Close
// closes the connection underneath.
func TestBufferedConnDeadline(t *testing.T) {
	client, server := net.Pipe()
	c := &bufferedConn{Conn: client, r: bufio.NewReaderSize(client, readBuffer)}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	go func() { _, _ = server.Write([]byte("hello")) }()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read after a new deadline: %q, %v", buf, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Write([]byte("x")); err == nil {
		t.Fatal("the connection underneath is still open")
	}
}
