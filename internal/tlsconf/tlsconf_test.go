package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// writePair writes a self-signed certificate and its key as PEM files.
func writePair(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir)
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("nothing"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	tc, err := Load(cert, cert, key, "db.example", true)
	if err != nil {
		t.Fatal(err)
	}
	if tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "db.example" ||
		!tc.InsecureSkipVerify || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("config %+v", tc)
	}
	tc, err = Load("", "", "", "", false)
	if err != nil || tc.RootCAs != nil || tc.Certificates != nil || tc.InsecureSkipVerify {
		t.Errorf("no files: %+v, %v", tc, err)
	}

	for _, c := range []struct {
		name                string
		ca, certFile, kFile string
		prefix              string
	}{
		{"ca missing", missing, "", "", "ca_file: "},
		{"ca without pem", empty, "", "", "ca_file: no PEM certificates in "},
		{"cert missing", "", missing, key, "cert_file: "},
		{"key missing", "", cert, "", "cert_file: "},
	} {
		if _, err := Load(c.ca, c.certFile, c.kFile, "", false); err == nil || !strings.HasPrefix(err.Error(), c.prefix) {
			t.Errorf("%s: error %v, want prefix %q", c.name, err, c.prefix)
		}
	}
}

func TestConfigBlock(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir)
	if tc, err := (Config{CAFile: "/nonexistent"}).Client("tls.", "h"); tc != nil || err != nil {
		t.Fatalf("off: %v %v", tc, err)
	}
	if errs := (Config{Enabled: true, CertFile: cert}).Validate("tls."); len(errs) != 1 ||
		!strings.HasPrefix(errs[0].Error(), "tls.cert_file: ") {
		t.Fatalf("cert without key: %v", errs)
	}
	if errs := (Config{CertFile: cert}).Validate("tls."); errs != nil {
		t.Fatalf("off: %v", errs)
	}
	tc, err := (Config{Enabled: true, CAFile: cert, CertFile: cert, KeyFile: key}).Client("tls.", "db.example")
	if err != nil || tc.ServerName != "db.example" || tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Fatalf("%+v %v", tc, err)
	}
	if tc, _ = (Config{Enabled: true, ServerName: "other"}).Client("tls.", "db.example"); tc.ServerName != "other" {
		t.Fatalf("server name %q", tc.ServerName)
	}
	if _, err := (Config{Enabled: true, CAFile: "/nonexistent"}).Client("tls.", ""); err == nil ||
		!strings.HasPrefix(err.Error(), "tls.ca_file: ") {
		t.Fatalf("err %v", err)
	}
}

func TestConfigYAMLShapes(t *testing.T) {
	for _, tc := range []struct {
		yaml, err string
		want      Config
	}{
		{"tls: true", "", Config{Enabled: true}},
		{"tls: false", "", Config{}},
		{"tls: {enabled: true, ca_file: ca.pem, server_name: db}", "", Config{Enabled: true, CAFile: "ca.pem", ServerName: "db"}},
		{"tls: {cafile: x}", `unknown key "cafile"`, Config{}},
		{"tls: maybe", "want true, false or a mapping", Config{}},
	} {
		var v struct {
			TLS Config `yaml:"tls"`
		}
		err := yaml.Unmarshal([]byte(tc.yaml), &v)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil || v.TLS != tc.want {
			t.Errorf("%s: %+v, %v", tc.yaml, v.TLS, err)
		}
	}
}
