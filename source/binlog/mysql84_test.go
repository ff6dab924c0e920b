package binlog

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowsync/rowsync/cdc"
	"github.com/rowsync/rowsync/internal/mysqlstandin"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and returns
// its PEM file and the server's TLS config.
func selfSigned(t *testing.T, dir, name string) (string, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// TestMySQL84OverTLS runs the source against a MySQL 8.4 stand-in that
// only accepts TLS: caching_sha2_password inside TLS on the query and the
// replication connection, start "current" through SHOW BINARY LOG STATUS
// (SHOW MASTER STATUS is refused), and a recorded MySQL 8.0 binlog read
// over the wire, its partial JSON update included. A server certificate
// the CA does not vouch for is refused.
func TestMySQL84OverTLS(t *testing.T) {
	dir := t.TempDir()
	ca, serverTLS := selfSigned(t, dir, "server")
	otherCA, _ := selfSigned(t, dir, "other")
	srv, err := mysqlstandin.Start(mysqlstandin.Config{User: "repl", Password: "pw-8.4",
		Files: []string{filepath.Join("testdata", "mysql8", "json.binlog.000001")}, TLS: serverTLS, RequireTLS: true,
		Tables: []mysqlstandin.Table{{DB: "mysql", Name: "t", PK: []string{"id"},
			Columns: [][2]string{{"id", "int"}, {"json_col", "json"}, {"name", "varchar(100)"}, {"age", "int"}}}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := Config{Addr: srv.Addr(), User: "repl", Password: "pw-8.4", Include: []string{`mysql\.t`},
		TLS: TLSConfig{Enabled: true, CAFile: ca}}

	cur := cfg
	cur.Start = "current"
	s, err := New(ctx, cur, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Checkpoint().String(); !strings.Contains(got, "binlog.000001:4011") {
		t.Fatalf("current position %s, want binlog.000001:4011", got)
	}
	s.Close(ctx)

	from := cfg
	from.Start = "binlog.000001:4"
	s, err = New(ctx, from, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	var got []cdc.Event
	for len(got) < 18 {
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		got = append(got, cdc.CloneEvents(b.Events)...) // kept past the ack
		if err := b.Ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	last := got[17].After
	if last.Get("json_col") != cdc.JSON(`{"age": 42, "data": "zzzzzzzzzz", "name": "Pete"}`) || last.Get("age") != int64(42) {
		t.Fatalf("last row %v", last)
	}
	if n := srv.Plain(); n != 0 {
		t.Fatalf("%d connections without TLS", n)
	}

	gtid := cfg
	gtid.Start = "55778904-0299-11f1-b1b8-4ef0c4956feb:1-3"
	if s, err := New(ctx, gtid, nil, testLogger(t)); err == nil {
		s.Close(ctx)
		t.Fatal("a GTID start on a server with gtid_mode=OFF was accepted")
	} else if !strings.Contains(err.Error(), "gtid_mode=OFF") {
		t.Fatalf("err %v", err)
	}

	plain := cfg
	plain.TLS = TLSConfig{}
	if s, err := New(ctx, plain, nil, testLogger(t)); err == nil {
		s.Close(ctx)
		t.Fatal("the stand-in took a connection without TLS")
	}
	if srv.Plain() == 0 {
		t.Fatal("the stand-in saw no connection without TLS: it cannot tell")
	}

	bad := cfg
	bad.TLS.CAFile = otherCA
	if s, err := New(ctx, bad, nil, testLogger(t)); err == nil {
		s.Close(ctx)
		t.Fatal("a certificate the CA does not vouch for was accepted")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err %v", err)
	}
}
