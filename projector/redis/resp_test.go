package redis

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func TestAppendCommand(t *testing.T) {
	k := "user:1"
	cases := []struct {
		name string
		args []any
		want string
		err  string
	}{
		{"strings", []any{"hset", &k, "name", []byte("Grüße")},
			"*4\r\n$4\r\nhset\r\n$6\r\nuser:1\r\n$4\r\nname\r\n$7\r\nGrüße\r\n", ""},
		{"empty values", []any{"del", "", []byte{}}, "*3\r\n$3\r\ndel\r\n$0\r\n\r\n$0\r\n\r\n", ""},
		{"binary", []any{"set", "k", "\r\n\x00*$"}, "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$5\r\n\r\n\x00*$\r\n", ""},
		{"int", []any{"PEXPIRE", &k, 5}, "", "argument 2 of pexpire: unsupported type int"},
		{"nil pointer", []any{"hset", (*string)(nil)}, "", "argument 1 of hset: nil *string"},
		{"nil", []any{"hset", nil}, "", "argument 1 of hset: unsupported type <nil>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("before")
			got, err := appendCommand(prefix, tc.args)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if string(got) != "before" {
					t.Errorf("buffer after an error = %q, want it unchanged", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "before"+tc.want {
				t.Errorf("got %q, want %q", got, "before"+tc.want)
			}
		})
	}
}

// TestAppendBulkLengths: a bulk string's header is its length in decimal
// at every length, around the digit-by-digit writer's bounds too, and
// whatever room the buffer has left.
func TestAppendBulkLengths(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 12345} {
		s := strings.Repeat("x", n)
		want := "$" + strconv.Itoa(n) + "\r\n" + s + "\r\n"
		for _, room := range []int{0, 1, 7, n + 7, n + 8, n + 100} {
			b := make([]byte, 3, 3+room)
			if got := appendBulk(b, s); string(got[3:]) != want || string(got[:3]) != "\x00\x00\x00" {
				t.Fatalf("appendBulk(%d bytes, room %d) = %q, want %q", n, room, got, want)
			}
			if got := appendHeader(b, '*', n); string(got[3:]) != "*"+strconv.Itoa(n)+"\r\n" {
				t.Fatalf("appendHeader(%d, room %d) = %q", n, room, got)
			}
		}
	}
	if got := appendHeader(nil, '*', -1); string(got) != "*-1\r\n" {
		t.Fatalf("appendHeader(-1) = %q", got)
	}
}

// FuzzCommand: every command appendCommand writes reads back as the
// same arguments.
func FuzzCommand(f *testing.F) {
	f.Add("hset\x00k\x00f\x00v")
	f.Add("\x00\r\n\x00$-1\r\n")
	f.Fuzz(func(t *testing.T, joined string) {
		parts := strings.Split(joined, "\x00")
		args := make([]any, len(parts))
		for i, p := range parts {
			switch i % 3 {
			case 0:
				args[i] = p
			case 1:
				args[i] = &parts[i]
			default:
				args[i] = []byte(p)
			}
		}
		b, err := appendCommand(nil, args)
		if err != nil {
			t.Fatal(err)
		}
		v, err := newRespReader(bytes.NewReader(b)).readValue(0)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%q", v); got != fmt.Sprintf("%q", parts) {
			t.Fatalf("read back %s, want %q", got, parts)
		}
	})
}

func TestReadValue(t *testing.T) {
	cases := []struct {
		in   string
		want string // fmt %#v of the value, or the error's text
	}{
		{"+OK\r\n", `"OK"`},
		{"-ERR bad\r\n", `"ERR bad"`},
		{":-42\r\n", `-42`},
		{":9223372036854775807\r\n", `9223372036854775807`},
		{":-9223372036854775808\r\n", `-9223372036854775808`},
		{"$3\r\na\r\n\r\n", `"a\r\n"`},
		{"$0\r\n\r\n", `""`},
		{"$-1\r\n", `<nil>`},
		{"*-1\r\n", `<nil>`},
		{"*0\r\n", `[]interface {}{}`},
		{"*3\r\n:1\r\n*1\r\n-NOSCRIPT x\r\n$1\r\nz\r\n", `[]interface {}{1, []interface {}{"NOSCRIPT x"}, "z"}`},
		// Malformed and truncated replies: errors.
		{"", "unexpected EOF"},
		{"+OK", "unexpected EOF"},
		{"+OK\n", "redis protocol error: reply line without CRLF"},
		{"\r\n", "redis protocol error: empty reply line"},
		{":\r\n", `redis protocol error: bad integer ""`},
		{":1x\r\n", `redis protocol error: bad integer "1x"`},
		{":-\r\n", `redis protocol error: bad integer "-"`},
		{":9223372036854775808\r\n", `redis protocol error: integer "9223372036854775808" out of range`},
		{":99999999999999999999\r\n", `redis protocol error: bad integer "99999999999999999999"`},
		{"$5\r\nabc\r\n", "unexpected EOF"},
		{"$3\r\nabcXY", "redis protocol error: bulk string not followed by CRLF"},
		{"$3\r\nabc", "unexpected EOF"},
		{"$-2\r\n", `redis protocol error: bad length "-2"`},
		{"$+1\r\n", `redis protocol error: bad length "+1"`},
		{"$2097152\r\n", "redis protocol error: length 2097152 over 1048576"},
		{"$99999999999\r\n", `redis protocol error: bad length "99999999999"`},
		{"*2147483647\r\n:1\r\n", "unexpected EOF"},
		{"*3\r\n:1\r\n", "unexpected EOF"},
		{"%1\r\n+a\r\n+b\r\n", `redis protocol error: unknown reply type "%1"`},
		{"_\r\n", `redis protocol error: unknown reply type "_"`},
		{strings.Repeat("*1\r\n", 20) + ":1\r\n", "redis protocol error: arrays nested deeper than 8"},
		{"+" + strings.Repeat("x", maxLine), "redis protocol error: reply line longer than 16384 bytes"},
	}
	for _, tc := range cases {
		name := tc.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			// Whole, and one byte per read (every boundary).
			for _, src := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				v, err := newRespReader(src).readValue(0)
				got := fmt.Sprintf("%#v", v)
				if e, ok := v.(redisError); ok {
					got = fmt.Sprintf("%q", string(e))
				}
				if err != nil {
					got = err.Error()
				}
				if got != tc.want {
					t.Errorf("got %s, want %s", got, tc.want)
				}
			}
		})
	}
}

func TestSkip(t *testing.T) {
	in := "+OK\r\n-ERR top\r\n:1\r\n$5\r\nab\r\nc\r\n$-1\r\n*3\r\n*2\r\n-ERR inner\r\n$0\r\n\r\n:2\r\n+x\r\n*-1\r\n:7\r\n"
	for _, src := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
		rd := newRespReader(src)
		var got []string
		for range 7 {
			rerr, err := rd.skip()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(rerr))
		}
		if want := `["" "ERR top" "" "" "" "" ""]`; fmt.Sprintf("%q", got) != want {
			t.Errorf("errors %q, want %s", got, want)
		}
		// The stream is in step: the next reply is the last one.
		if v, err := rd.readValue(0); err != nil || v != int64(7) {
			t.Errorf("after skipping: %v, %v", v, err)
		}
	}
	// A large bulk string is skipped without being kept.
	big := "$" + fmt.Sprint(3*maxLine) + "\r\n" + strings.Repeat("y", 3*maxLine) + "\r\n:1\r\n"
	rd := newRespReader(strings.NewReader(big))
	if _, err := rd.skip(); err != nil {
		t.Fatal(err)
	}
	if v, err := rd.readValue(0); err != nil || v != int64(1) {
		t.Errorf("after a large bulk: %v, %v", v, err)
	}
}

func TestReadChunk(t *testing.T) {
	cases := []struct {
		name      string
		in        string
		n, commit int
		want      string // %+v of the replies, or the error
	}{
		{"fast path", "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n:3\r\n", 2, -1,
			"{multiErr: queueErr: queueAt:0 execErr: cmdErr: cmdAt:0 commit:<nil>}"},
		{"commit", "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:0\r\n*2\r\n:2\r\n:5\r\n", 2, 1,
			"{multiErr: queueErr: queueAt:0 execErr: cmdErr: cmdAt:0 commit:[2 5]}"},
		{"noscript", "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:0\r\n-NOSCRIPT No matching script.\r\n", 2, 1,
			"{multiErr: queueErr: queueAt:0 execErr: cmdErr: cmdAt:0 commit:NOSCRIPT No matching script.}"},
		{"command errors", "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:1\r\n-WRONGTYPE a\r\n-ERR b\r\n", 3, -1,
			"{multiErr: queueErr: queueAt:0 execErr: cmdErr:WRONGTYPE a cmdAt:1 commit:<nil>}"},
		{"queue error", "+OK\r\n+QUEUED\r\n-ERR wrong number of arguments\r\n-EXECABORT Transaction discarded\r\n", 2, -1,
			"{multiErr: queueErr:ERR wrong number of arguments queueAt:1 execErr:EXECABORT Transaction discarded cmdErr: cmdAt:0 commit:<nil>}"},
		{"readonly", "+OK\r\n-READONLY You can't write against a read only replica.\r\n-EXECABORT x\r\n", 1, -1,
			"{multiErr: queueErr:READONLY You can't write against a read only replica. queueAt:0 execErr:EXECABORT x cmdErr: cmdAt:0 commit:<nil>}"},
		{"multi refused", "-LOADING Redis is loading\r\n-LOADING Redis is loading\r\n-ERR EXEC without MULTI\r\n", 1, -1,
			"{multiErr:LOADING Redis is loading queueErr: queueAt:0 execErr: cmdErr: cmdAt:0 commit:<nil>}"},
		// Broken streams.
		{"count", "+OK\r\n+QUEUED\r\n*2\r\n:1\r\n:1\r\n", 1, -1, "redis protocol error: length 2 over 1"},
		{"fewer", "+OK\r\n+QUEUED\r\n+QUEUED\r\n*1\r\n:1\r\n", 2, -1, "redis protocol error: EXEC replied 1 replies for 2 commands"},
		{"nil exec", "+OK\r\n+QUEUED\r\n*-1\r\n", 1, -1, "redis protocol error: EXEC replied -1 replies for 1 commands"},
		{"not queued", "+OK\r\n:1\r\n*1\r\n:1\r\n", 1, -1, `redis protocol error: got ":1", want status "QUEUED"`},
		{"wrong status", "+OK\r\n+QUEUE\r\n*1\r\n:1\r\n", 1, -1, `redis protocol error: got status "QUEUE", want "QUEUED"`},
		{"exec status", "+OK\r\n+QUEUED\r\n+OK\r\n", 1, -1, `redis protocol error: EXEC replied "+OK"`},
		{"truncated", "+OK\r\n+QUEUED\r\n*1\r\n", 1, -1, "unexpected EOF"},
		{"truncated commit", "+OK\r\n+QUEUED\r\n*1\r\n*2\r\n:1\r\n", 1, 0, "unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out chunkReplies
			err := readChunk(newRespReader(iotest.OneByteReader(strings.NewReader(tc.in))), tc.n, tc.commit, &out)
			got := fmt.Sprintf("%+v", out)
			if err != nil {
				got = err.Error()
				if !errors.Is(err, errProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("error %v is neither a protocol error nor EOF", err)
				}
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// FuzzReplies feeds hostile bytes to every read the chunk path makes: each
// returns (an error or a value), none panics or reads past the input.
func FuzzReplies(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n*2\r\n:2\r\n:5\r\n",
		"+OK\r\n-ERR x\r\n-EXECABORT y\r\n",
		"*1\r\n$3\r\nabc\r\n",
		"$-1\r\n*-1\r\n",
		"*2147483647\r\n*2147483647\r\n",
		"$536870912\r\n",
	} {
		f.Add([]byte(s), 2, 1)
	}
	f.Fuzz(func(t *testing.T, in []byte, n, commit int) {
		n = min(max(n, 0), 600)
		for _, read := range []func(*respReader) error{
			func(rd *respReader) error { _, err := rd.readValue(0); return err },
			func(rd *respReader) error { _, err := rd.skip(); return err },
			func(rd *respReader) error { _, err := rd.status("OK"); return err },
			func(rd *respReader) error { return readChunk(rd, n, commit, &chunkReplies{}) },
		} {
			src := bytes.NewReader(in)
			rd := newRespReader(src)
			if err := read(rd); err == nil && rd.r > rd.w {
				t.Fatalf("read past the buffer: r=%d w=%d", rd.r, rd.w)
			}
		}
	})
}
