package redis

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// This file is the projector's own RESP2 codec for the chunk path (see
// conn.go): appendCommand writes a command into a reused buffer and
// respReader reads the replies the chunk path expects. Every input byte
// of a reply is untrusted: a malformed or truncated reply is an error,
// never a panic, and nothing it announces (lengths, counts) is allocated
// before it has arrived, beyond the limits below.

// Reply limits. A longer line or bulk string is a protocol error.
const (
	// maxLine bounds a reply line (status, error, integer, header); it is
	// also the read buffer's size, so a line is always read whole.
	maxLine = 16 << 10
	// maxBulk bounds a bulk string that is skipped (Redis's own
	// proto-max-bulk-len default).
	maxBulk = 512 << 20
	// maxValueBulk bounds a bulk string that is kept (readValue): the
	// replies kept are a script's and SCRIPT LOAD's, a few bytes each.
	maxValueBulk = 1 << 20
	// maxDepth bounds the nesting of arrays in a kept reply.
	maxDepth = 8
)

// redisError is an error reply of the server ("-ERR ...", without the
// dash). It is a go-redis Error (goredis.HasErrorPrefix works on it).
type redisError string

func (e redisError) Error() string { return string(e) }

// RedisError marks the type as a reply of the server, as go-redis does.
func (redisError) RedisError() {}

// hasPrefix reports whether the error's code is prefix ("NOSCRIPT").
func (e redisError) hasPrefix(prefix string) bool {
	return strings.HasPrefix(strings.TrimPrefix(string(e), "ERR "), prefix)
}

// errProtocol wraps every malformed reply: the connection's reply stream
// is then in an unknown state and the connection must be closed.
var errProtocol = errors.New("redis protocol error")

func protocolErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// appendCommand appends args as one RESP command (an array of bulk
// strings) to b. An argument is a string, a *string or a []byte; anything
// else is an error, and b is returned as it was.
func appendCommand(b []byte, args []any) ([]byte, error) {
	at := len(b)
	b = appendHeader(b, '*', len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			b = appendBulk(b, v)
		case *string:
			if v == nil {
				return b[:at], fmt.Errorf("argument %d of %s: nil *string", i, cmdName(args))
			}
			b = appendBulk(b, *v)
		case []byte:
			b = appendBulkBytes(b, v)
		default:
			return b[:at], fmt.Errorf("argument %d of %s: unsupported type %T", i, cmdName(args), a)
		}
	}
	return b, nil
}

// appendStrings appends a command of plain strings (the handshake's).
func appendStrings(b []byte, args ...string) []byte {
	b = appendHeader(b, '*', len(args))
	for _, a := range args {
		b = appendBulk(b, a)
	}
	return b
}

// appendHeader appends a RESP header: kind, the decimal n, CRLF. Counts
// and lengths below 1,000, nearly all a chunk has, are appended digit by
// digit in one append: through strconv, a field's header cost about as
// much as the rest of sending it.
func appendHeader(b []byte, kind byte, n int) []byte {
	switch {
	case uint(n) < 10:
		return append(b, kind, byte('0'+n), '\r', '\n')
	case uint(n) < 100:
		return append(b, kind, byte('0'+n/10), byte('0'+n%10), '\r', '\n')
	case uint(n) < 1000:
		return append(b, kind, byte('0'+n/100), byte('0'+n/10%10), byte('0'+n%10), '\r', '\n')
	}
	b = strconv.AppendInt(append(b, kind), int64(n), 10)
	return append(b, '\r', '\n')
}

func appendBulk(b []byte, s string) []byte {
	b = appendHeader(b, '$', len(s))
	return append(append(b, s...), '\r', '\n')
}

func appendBulkBytes(b []byte, s []byte) []byte {
	b = appendHeader(b, '$', len(s))
	return append(append(b, s...), '\r', '\n')
}

// cmdName is the name of the command args, lowercase as go-redis's
// Cmd.Name gives it ("hset").
func cmdName(args []any) string {
	if len(args) == 0 {
		return ""
	}
	s, _ := argText(args[0])
	return strings.ToLower(s)
}

// argText is the text of a command argument (a string, a *string or a
// []byte, as appendCommand takes them); false for anything else and a nil
// *string.
func argText(a any) (string, bool) {
	switch v := a.(type) {
	case string:
		return v, true
	case *string:
		if v != nil {
			return *v, true
		}
	case []byte:
		return string(v), true
	}
	return "", false
}

// chunkReplies is what the replies of one chunk's transaction said.
type chunkReplies struct {
	multiErr redisError // MULTI refused (the commands ran outside it)
	queueErr redisError // a command refused at queue time (EXECABORT)
	queueAt  int
	execErr  redisError // EXEC's own error reply
	cmdErr   redisError // the first command's error reply inside EXEC
	cmdAt    int
	// commit is the commit script's reply (a redisError for an error
	// reply), nil without one.
	commit any
}

// encodeChunk appends the chunk's transaction to b: MULTI, the DEL when
// it has keys, the writes, the commit script when the chunk has checked
// ops (its index in commit, else -1), EXEC. n counts the commands between
// MULTI and EXEC.
func encodeChunk(b []byte, c *chunk, sha string) (out []byte, n, commit int, err error) {
	at := len(b)
	commit = -1
	b = appendStrings(b, "multi")
	if len(c.dels) > 1 {
		if b, err = appendCommand(b, c.dels); err != nil {
			return b[:at], 0, -1, err
		}
		n++
	}
	for _, w := range c.writes {
		if b, err = appendCommand(b, w); err != nil {
			return b[:at], 0, -1, err
		}
		n++
	}
	if len(c.ops) > 0 {
		if b, err = appendCommand(b, c.evalSha(sha)); err != nil {
			return b[:at], 0, -1, err
		}
		commit = n
		n++
	}
	return appendStrings(b, "exec"), n, commit, nil
}

// cmdAt names the i-th command of a chunk as encodeChunk lays them out.
func (c *chunk) cmdAt(i, commit int) string {
	if i == commit {
		return "commit"
	}
	if len(c.dels) > 1 {
		if i == 0 {
			return "del"
		}
		i--
	}
	if i < len(c.writes) {
		return cmdName(c.writes[i])
	}
	return "command " + strconv.Itoa(i)
}

// readChunk reads the replies of a transaction of n commands: +OK, n
// +QUEUED (or the error that refused a command), then EXEC's array. A
// Redis error reply is recorded in out; an error return means the reply
// stream is broken.
func readChunk(rd *respReader, n, commit int, out *chunkReplies) error {
	rerr, err := rd.status("OK")
	if err != nil {
		return err
	}
	if rerr != "" {
		// Without MULTI each command replied for itself, and EXEC
		// with an error.
		out.multiErr = rerr
		for range n + 1 {
			if _, err := rd.skip(); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range n {
		rerr, err := rd.status("QUEUED")
		if err != nil {
			return err
		}
		if rerr != "" && out.queueErr == "" {
			out.queueErr, out.queueAt = rerr, i
		}
	}
	l, err := rd.line()
	if err != nil {
		return err
	}
	switch l[0] {
	case '-':
		out.execErr = redisError(l[1:])
		return nil
	case '*':
	default:
		return protocolErr("EXEC replied %q", truncLine(l))
	}
	m, err := parseLen(l[1:], n)
	switch {
	case err != nil:
		return err
	case m != n:
		return protocolErr("EXEC replied %d replies for %d commands", m, n)
	}
	for i := range n {
		if i == commit {
			v, err := rd.readValue(0)
			if err != nil {
				return err
			}
			out.commit = v
			continue
		}
		rerr, err := rd.skip()
		if err != nil {
			return err
		}
		if rerr != "" && out.cmdErr == "" {
			out.cmdErr, out.cmdAt = rerr, i
		}
	}
	return nil
}

// respReader reads RESP2 replies from a connection through its own
// buffer (maxLine bytes, allocated once per connection).
type respReader struct {
	src  io.Reader
	buf  []byte
	r, w int
}

func newRespReader(src io.Reader) *respReader {
	return &respReader{src: src, buf: make([]byte, maxLine)}
}

// fill reads more bytes after the unread ones, moving those to the front.
func (rd *respReader) fill() error {
	if rd.r > 0 {
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
	}
	if rd.w == len(rd.buf) {
		return protocolErr("reply line longer than %d bytes", maxLine)
	}
	n, err := rd.src.Read(rd.buf[rd.w:])
	rd.w += n
	if n > 0 {
		return nil
	}
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF // a reply was expected
	}
	return err
}

// line returns the next reply line, its type byte first, without the
// CRLF. It is valid until the next read.
func (rd *respReader) line() ([]byte, error) {
	scan := rd.r
	for {
		if i := bytes.IndexByte(rd.buf[scan:rd.w], '\n'); i >= 0 {
			i += scan
			if i == rd.r || rd.buf[i-1] != '\r' {
				return nil, protocolErr("reply line without CRLF")
			}
			l := rd.buf[rd.r : i-1]
			rd.r = i + 1
			if len(l) == 0 {
				return nil, protocolErr("empty reply line")
			}
			return l, nil
		}
		scan = rd.w - rd.r // unread bytes scanned so far, after fill moves them
		if err := rd.fill(); err != nil {
			return nil, err
		}
		scan += rd.r
	}
}

// discard skips n bytes of a bulk string's body.
func (rd *respReader) discard(n int) error {
	for n > 0 {
		if rd.r == rd.w {
			rd.r, rd.w = 0, 0
			if err := rd.fill(); err != nil {
				return err
			}
		}
		k := min(n, rd.w-rd.r)
		rd.r += k
		n -= k
	}
	return nil
}

// readFull copies len(p) bytes of a bulk string's body into p.
func (rd *respReader) readFull(p []byte) error {
	for len(p) > 0 {
		if rd.r == rd.w {
			rd.r, rd.w = 0, 0
			if err := rd.fill(); err != nil {
				return err
			}
		}
		k := copy(p, rd.buf[rd.r:rd.w])
		rd.r += k
		p = p[k:]
	}
	return nil
}

// crlf reads the CRLF ending a bulk string.
func (rd *respReader) crlf() error {
	for rd.w-rd.r < 2 {
		if err := rd.fill(); err != nil {
			return err
		}
	}
	if rd.buf[rd.r] != '\r' || rd.buf[rd.r+1] != '\n' {
		return protocolErr("bulk string not followed by CRLF")
	}
	rd.r += 2
	return nil
}

// parseLen parses a length or count: a decimal in [-1, max].
func parseLen(b []byte, max int) (int, error) {
	if len(b) == 2 && b[0] == '-' && b[1] == '1' {
		return -1, nil
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, protocolErr("bad length %q", b)
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, protocolErr("bad length %q", b)
		}
		n = n*10 + int(c-'0')
	}
	if n > max {
		return 0, protocolErr("length %d over %d", n, max)
	}
	return n, nil
}

// parseInt parses an integer reply's text.
func parseInt(b []byte) (int64, error) {
	neg := len(b) > 0 && b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return 0, protocolErr("bad integer %q", truncLine(b))
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, protocolErr("bad integer %q", truncLine(b))
		}
		n = n*10 + uint64(c-'0') // 19 digits cannot overflow a uint64
	}
	switch {
	case neg && n <= 1<<63:
		return -int64(n), nil // -1<<63 wraps to itself
	case !neg && n < 1<<63:
		return int64(n), nil
	}
	return 0, protocolErr("integer %q out of range", b)
}

// status reads a status reply and reports whether it is want. An error
// reply comes back as a redisError in rerr; err is an I/O or protocol
// error (the connection is then unusable).
func (rd *respReader) status(want string) (rerr redisError, err error) {
	l, err := rd.line()
	if err != nil {
		return "", err
	}
	switch l[0] {
	case '+':
		if string(l[1:]) != want {
			return "", protocolErr("got status %q, want %q", l[1:], want)
		}
		return "", nil
	case '-':
		return redisError(l[1:]), nil
	}
	return "", protocolErr("got %q, want status %q", truncLine(l), want)
}

// skip reads one whole reply of any RESP2 type, nested arrays included,
// keeping nothing. A top-level error reply comes back in rerr.
func (rd *respReader) skip() (rerr redisError, err error) {
	pending := 1 // replies still to read
	top := true
	for pending > 0 {
		pending--
		l, err := rd.line()
		if err != nil {
			return "", err
		}
		switch l[0] {
		case '+':
		case '-':
			if top {
				rerr = redisError(l[1:])
			}
		case ':':
			if _, err := parseInt(l[1:]); err != nil {
				return "", err
			}
		case '$':
			n, err := parseLen(l[1:], maxBulk)
			if err != nil {
				return "", err
			}
			if n >= 0 {
				if err := rd.discard(n); err != nil {
					return "", err
				}
				if err := rd.crlf(); err != nil {
					return "", err
				}
			}
		case '*':
			n, err := parseLen(l[1:], 1<<31-1)
			if err != nil {
				return "", err
			}
			if n > 0 {
				pending += n
			}
		default:
			return "", protocolErr("unknown reply type %q", truncLine(l))
		}
		top = false
	}
	return rerr, nil
}

// readValue reads one reply and returns it as go-redis's Cmd.Val would:
// an int64, a string (status or bulk), nil (a nil bulk or array), a []any
// or a redisError (an error reply, also inside an array). Arrays nest at
// most maxDepth deep and bulk strings are at most maxValueBulk long.
func (rd *respReader) readValue(depth int) (any, error) {
	l, err := rd.line()
	if err != nil {
		return nil, err
	}
	switch l[0] {
	case '+':
		return string(l[1:]), nil
	case '-':
		return redisError(l[1:]), nil
	case ':':
		return parseInt(l[1:])
	case '$':
		n, err := parseLen(l[1:], maxValueBulk)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n)
		if err := rd.readFull(b); err != nil {
			return nil, err
		}
		if err := rd.crlf(); err != nil {
			return nil, err
		}
		return string(b), nil
	case '*':
		n, err := parseLen(l[1:], 1<<31-1)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		if depth >= maxDepth {
			return nil, protocolErr("arrays nested deeper than %d", maxDepth)
		}
		// The count is untrusted: the slice grows with what arrives.
		arr := make([]any, 0, min(n, 64))
		for range n {
			v, err := rd.readValue(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	}
	return nil, protocolErr("unknown reply type %q", truncLine(l))
}

// truncLine shortens a line for an error message.
func truncLine(l []byte) []byte {
	if len(l) > 64 {
		return l[:64]
	}
	return l
}
