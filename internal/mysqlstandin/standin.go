// Package mysqlstandin is a test stand-in for a MySQL 8.4 primary, built on
// go-mysql's server package: it greets as 8.4 with caching_sha2_password
// (over plain TCP, so clients use its RSA key), refuses SHOW MASTER STATUS
// as 8.4 does, answers the metadata queries rowsync sends (some arrive as
// prepared statements) from a fixed catalog, and streams recorded binlog
// files over the replication protocol as one binlog sequence. It is test
// code: product code knows nothing of it.
package mysqlstandin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/go-mysql-org/go-mysql/server"
)

// Version is the version the stand-in reports.
const Version = "8.4.3"

// Table is one table of the stand-in's information_schema.
type Table struct {
	DB, Name string
	Columns  [][2]string // name, COLUMN_TYPE in ordinal order
	PK       []string
}

// Config configures a stand-in.
type Config struct {
	User, Password string
	// Files are recorded binlog files, served in order as binlog.000001...
	Files  []string
	Tables []Table
	// TLS, when set, is offered to clients; with RequireTLS a connection
	// that does not take it is dropped after the handshake.
	TLS        *tls.Config
	RequireTLS bool
	// Vars are global variables (SHOW GLOBAL VARIABLES); log_bin,
	// binlog_format, binlog_row_image and binlog_checksum default to a
	// ready server's.
	Vars map[string]string
}

// file is one served binlog: its events' raw bytes by start offset.
type file struct {
	name    string
	fde     []byte
	events  []event // after the format description
	size    uint64
	crc     bool
	rotated bool // ends with a rotate to the next file
}

type event struct {
	start uint64
	raw   []byte
}

// Server is a running stand-in.
type Server struct {
	cfg   Config
	ln    net.Listener
	srv   *server.Server
	files []*file
	vars  map[string]string

	mu      sync.Mutex
	allowed int // files that may be streamed
	changed chan struct{}
	conns   map[net.Conn]bool
	plain   int // connections dropped for not taking TLS
	closed  bool
	wg      sync.WaitGroup
}

// Start listens on 127.0.0.1 and serves until Close. Only the first
// `allowed` files are streamed until Release raises it.
func Start(cfg Config, allowed int) (*Server, error) {
	s := &Server{cfg: cfg, allowed: allowed, changed: make(chan struct{}), conns: map[net.Conn]bool{},
		vars: map[string]string{"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL",
			"binlog_checksum": "CRC32", "gtid_mode": "OFF", "server_id": "1", "binlog_row_metadata": "MINIMAL",
			"binlog_row_value_options": "", "server_uuid": "5a0e0e0e-0000-4000-8000-000000000001"}}
	for k, v := range cfg.Vars {
		s.vars[strings.ToLower(k)] = v
	}
	for i, path := range cfg.Files {
		f, err := load(path, fmt.Sprintf("binlog.%06d", i+1), i+1 < len(cfg.Files))
		if err != nil {
			return nil, err
		}
		s.files = append(s.files, f)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s.srv = server.NewServer(Version, mysql.DEFAULT_COLLATION_ID, mysql.AUTH_CACHING_SHA2_PASSWORD, key, cfg.TLS)
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Plain is how many connections were dropped for not taking TLS.
func (s *Server) Plain() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plain
}

// Addr is host:port to connect to.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Release lets the first n files be streamed.
func (s *Server) Release(n int) {
	s.mu.Lock()
	s.allowed = n
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Close stops listening and drops every connection.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			auth := server.NewInMemoryAuthenticationHandler(mysql.AUTH_CACHING_SHA2_PASSWORD)
			if err := auth.AddUser(s.cfg.User, s.cfg.Password); err != nil {
				return
			}
			h := &handler{s: s}
			conn, err := s.srv.NewCustomizedConn(c, auth, h)
			if err != nil {
				return
			}
			h.conn = c
			if s.cfg.RequireTLS && !conn.HasCapability(mysql.CLIENT_SSL) {
				s.mu.Lock()
				s.plain++
				s.mu.Unlock()
				return
			}
			for !conn.Closed() {
				if err := conn.HandleCommand(); err != nil {
					return
				}
			}
		}()
	}
}

// load splits a recorded file into events; its own trailing rotate and
// stop events are dropped (the stand-in rotates itself).
func load(path, name string, rotate bool) (*file, error) {
	f := &file{name: name, rotated: rotate}
	p := replication.NewBinlogParser()
	p.SetRawMode(true)
	err := p.ParseFile(path, 4, func(e *replication.BinlogEvent) error {
		start := uint64(e.Header.LogPos) - uint64(e.Header.EventSize)
		switch e.Header.EventType {
		case replication.FORMAT_DESCRIPTION_EVENT:
			f.fde = bytes.Clone(e.RawData)
			// the checksum algorithm is the byte before the 4-byte checksum
			f.crc = len(e.RawData) > 5 && e.RawData[len(e.RawData)-5] == 1
		case replication.ROTATE_EVENT, replication.STOP_EVENT:
		default:
			f.events = append(f.events, event{start: start, raw: bytes.Clone(e.RawData)})
		}
		f.size = max(f.size, uint64(e.Header.LogPos))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.fde == nil {
		return nil, fmt.Errorf("%s: no format description", path)
	}
	if len(f.events) > 0 {
		last := f.events[len(f.events)-1]
		f.size = last.start + uint64(len(last.raw))
	}
	return f, nil
}

// rotateEvent is a ROTATE_EVENT naming next at position 4; logPos is where
// it ends (0 for the artificial one opening a stream).
func rotateEvent(next string, logPos uint64, crc bool) []byte {
	body := binary.LittleEndian.AppendUint64(nil, 4)
	body = append(body, next...)
	size := replication.EventHeaderSize + len(body)
	if crc {
		size += 4
	}
	h := make([]byte, replication.EventHeaderSize)
	h[4] = byte(replication.ROTATE_EVENT)
	binary.LittleEndian.PutUint32(h[5:], 1)
	binary.LittleEndian.PutUint32(h[9:], uint32(size))
	if logPos > 0 {
		binary.LittleEndian.PutUint32(h[13:], uint32(logPos+uint64(size)))
	} else {
		binary.LittleEndian.PutUint16(h[17:], 0x20) // LOG_EVENT_ARTIFICIAL_F
	}
	ev := append(h, body...)
	if crc {
		ev = binary.LittleEndian.AppendUint32(ev, crc32.ChecksumIEEE(ev))
	}
	return ev
}

// stream sends the files from name:pos on, waiting at files not released.
func (s *Server) stream(ctx context.Context, st *replication.BinlogStreamer, name string, pos uint64) {
	idx := -1
	for i, f := range s.files {
		if f.name == name {
			idx = i
		}
	}
	if idx < 0 {
		st.AddErrorToStreamer(mysql.NewError(mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG,
			"Could not find first log file name in binary log index file"))
		return
	}
	send := func(raw []byte) bool {
		return st.AddEventToStreamer(&replication.BinlogEvent{RawData: raw}) == nil && ctx.Err() == nil
	}
	first := true
	for ; idx < len(s.files); idx++ {
		for {
			s.mu.Lock()
			ok, ch, closed := idx < s.allowed, s.changed, s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			if ok {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
		f := s.files[idx]
		if first {
			// the artificial rotate naming the file (no checksum: it
			// precedes the format description), then the description
			if !send(rotateEvent(f.name, 0, false)) {
				return
			}
			first = false
		} else {
			pos = 4
		}
		if !send(f.fde) {
			return
		}
		for _, e := range f.events {
			if e.start < pos {
				continue
			}
			if !send(e.raw) {
				return
			}
		}
		if f.rotated && !send(rotateEvent(s.files[idx+1].name, f.size, f.crc)) {
			return
		}
	}
	<-ctx.Done()
}

// handler answers one connection.
type handler struct {
	server.EmptyReplicationHandler
	s      *Server
	conn   net.Conn
	cancel context.CancelFunc
}

var (
	reVarWhere = regexp.MustCompile(`(?i)^SHOW (?:GLOBAL |SESSION )?VARIABLES WHERE Variable_name\s*=\s*'([^']+)'`)
	reVarLike  = regexp.MustCompile(`(?i)^SHOW (?:GLOBAL |SESSION )?VARIABLES LIKE '([^']+)'`)
	reVarIn    = regexp.MustCompile(`(?i)^SHOW (?:GLOBAL |SESSION )?VARIABLES WHERE Variable_name IN`)
	reSelectAt = regexp.MustCompile(`(?i)^SELECT @@(?:GLOBAL\.)?(\w+)`)
)

func (h *handler) UseDB(string) error { return nil }

func (h *handler) HandleQuery(q string) (*mysql.Result, error) {
	q = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(q), ";"))
	u := strings.ToUpper(q)
	switch {
	case strings.HasPrefix(u, "SET "), strings.HasPrefix(u, "USE "), u == "COMMIT", u == "ROLLBACK", strings.HasPrefix(u, "START TRANSACTION"):
		return nil, nil
	case u == "SELECT VERSION()", u == "SELECT @@VERSION":
		return text([]string{"VERSION()"}, [][]any{{Version}})
	case u == "SHOW MASTER STATUS":
		// 8.4 removed it
		return nil, mysql.NewError(mysql.ER_PARSE_ERROR, "You have an error in your SQL syntax; check the manual that "+
			"corresponds to your MySQL server version for the right syntax to use near 'MASTER STATUS' at line 1")
	case u == "SHOW BINARY LOG STATUS":
		f := h.s.files[len(h.s.files)-1]
		return text([]string{"File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB", "Executed_Gtid_Set"},
			[][]any{{f.name, f.size, "", "", ""}})
	case u == "SHOW BINARY LOGS":
		var rows [][]any
		for _, f := range h.s.files {
			rows = append(rows, []any{f.name, f.size, "No"})
		}
		return text([]string{"Log_name", "File_size", "Encrypted"}, rows)
	case reVarIn.MatchString(q):
		return text([]string{"Variable_name", "Value"}, nil)
	}
	if m := reVarWhere.FindStringSubmatch(q); m != nil {
		return h.variable(m[1])
	}
	if m := reVarLike.FindStringSubmatch(q); m != nil {
		return h.variable(m[1])
	}
	if m := reSelectAt.FindStringSubmatch(q); m != nil {
		v := h.s.vars[strings.ToLower(m[1])]
		return text([]string{"@@" + m[1]}, [][]any{{v}})
	}
	if strings.Contains(u, "FROM INFORMATION_SCHEMA.TABLES") {
		var rows [][]any
		for _, t := range h.s.cfg.Tables {
			rows = append(rows, []any{t.DB, t.Name})
		}
		return text([]string{"TABLE_SCHEMA", "TABLE_NAME"}, rows)
	}
	return nil, mysql.NewError(mysql.ER_UNKNOWN_ERROR, "stand-in: unexpected query: "+q)
}

func (h *handler) variable(name string) (*mysql.Result, error) {
	v := h.s.vars[strings.ToLower(name)]
	var rows [][]any
	// go-mysql's result builder would send '' as NULL: an empty value is
	// left out, which reads the same to a client asking for one name
	if v != "" {
		rows = [][]any{{name, v}}
	}
	return text([]string{"Variable_name", "Value"}, rows)
}

func text(names []string, rows [][]any) (*mysql.Result, error) {
	rs, err := mysql.BuildSimpleTextResultset(names, rows)
	if err != nil {
		return nil, err
	}
	return mysql.NewResult(rs), nil
}

// prepared is what a prepared statement's context remembers.
type prepared struct{ query string }

func (h *handler) HandleStmtPrepare(q string) (int, int, any, error) {
	u := strings.ToUpper(q)
	cols := 0
	switch {
	case strings.Contains(u, "INFORMATION_SCHEMA.COLUMNS"):
		cols = 2
	case strings.Contains(u, "INFORMATION_SCHEMA.STATISTICS"), strings.Contains(u, "INFORMATION_SCHEMA.CHECK_CONSTRAINTS"):
		cols = 1
	default:
		return 0, 0, nil, mysql.NewError(mysql.ER_UNKNOWN_ERROR, "stand-in: unexpected statement: "+q)
	}
	return strings.Count(q, "?"), cols, &prepared{query: u}, nil
}

func (h *handler) HandleStmtExecute(ctx any, _ string, args []any) (*mysql.Result, error) {
	p, _ := ctx.(*prepared)
	if p == nil || len(args) < 2 {
		return nil, errors.New("stand-in: bad statement")
	}
	db, name := argString(args[0]), argString(args[1])
	var t *Table
	for i := range h.s.cfg.Tables {
		if h.s.cfg.Tables[i].DB == db && h.s.cfg.Tables[i].Name == name {
			t = &h.s.cfg.Tables[i]
		}
	}
	var names []string
	var rows [][]any
	switch {
	case strings.Contains(p.query, "INFORMATION_SCHEMA.COLUMNS"):
		// CHARACTER_SET_NAME: the recorded tables' text is UTF-8 ("" is
		// read as such)
		names = []string{"COLUMN_NAME", "COLUMN_TYPE", "CHARACTER_SET_NAME"}
		if t != nil {
			for _, c := range t.Columns {
				rows = append(rows, []any{c[0], c[1], ""})
			}
		}
	case strings.Contains(p.query, "INFORMATION_SCHEMA.STATISTICS"):
		names = []string{"COLUMN_NAME"}
		if t != nil {
			for _, c := range t.PK {
				rows = append(rows, []any{c})
			}
		}
	default:
		names = []string{"CHECK_CLAUSE"}
	}
	if len(rows) == 0 {
		// an empty result still needs its columns
		rs := &mysql.Resultset{Fields: make([]*mysql.Field, len(names))}
		for i, n := range names {
			rs.Fields[i] = &mysql.Field{Name: []byte(n), Type: mysql.MYSQL_TYPE_VAR_STRING, Charset: 33}
		}
		return mysql.NewResult(rs), nil
	}
	rs, err := mysql.BuildSimpleBinaryResultset(names, rows)
	if err != nil {
		return nil, err
	}
	return mysql.NewResult(rs), nil
}

func argString(v any) string {
	switch x := v.(type) {
	case mysql.TypedBytes:
		return string(x.Bytes)
	case []byte:
		return string(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

func (h *handler) HandleStmtClose(any) error { return nil }

func (h *handler) HandleRegisterSlave([]byte) error { return nil }

func (h *handler) HandleBinlogDump(pos mysql.Position) (*replication.BinlogStreamer, error) {
	st := replication.NewBinlogStreamer()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	// the stream ends with the connection: the server writes until the
	// client goes away, then the write fails
	h.s.wg.Add(2)
	go func() {
		defer h.s.wg.Done()
		defer cancel()
		buf := make([]byte, 1)
		for {
			if _, err := h.conn.Read(buf); err != nil {
				return
			}
		}
	}()
	go func() {
		defer h.s.wg.Done()
		h.s.stream(ctx, st, pos.Name, uint64(pos.Pos))
		st.AddErrorToStreamer(errors.New("stand-in: stream closed"))
	}()
	return st, nil
}

func (h *handler) HandleBinlogDumpGTID(*mysql.MysqlGTIDSet) (*replication.BinlogStreamer, error) {
	return nil, mysql.NewError(mysql.ER_UNKNOWN_ERROR, "stand-in: GTID auto-positioning is not recorded")
}

func (h *handler) HandleOtherCommand(cmd byte, _ []byte) error {
	return mysql.NewError(mysql.ER_UNKNOWN_ERROR, fmt.Sprintf("stand-in: command %d not supported", cmd))
}

// Exists reports whether path exists, for tests skipping absent data.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
