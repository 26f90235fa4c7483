package roots

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

// systemRoots answers as Go's loader (root_unix.go) would: the first CA
// file that can be read decides, then the directories; a file without a
// certificate is no roots.
func TestSystemRoots(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert := "-----BEGIN CERTIFICATE-----\n"
	full := write("ca.pem", cert)
	commented := write("commented.pem", "# a bundle's header\n"+cert)
	empty := write("empty.pem", "")
	garbage := write("garbage.pem", "not a certificate\n")
	certDir, emptyDir := filepath.Join(dir, "certs"), filepath.Join(dir, "nocerts")
	for _, d := range []string{certDir, emptyDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(certDir, "one.pem"), []byte(cert), 0o644)
	os.WriteFile(filepath.Join(emptyDir, "readme"), []byte("no certificate\n"), 0o644)
	missing := filepath.Join(dir, "missing.pem")
	for _, tt := range []struct {
		name      string
		file, dir string
		want      bool
	}{
		{"certificate", full, emptyDir, true},
		{"after a comment", commented, emptyDir, true},
		{"empty file", empty, emptyDir, false},
		{"no certificate in the file", garbage, emptyDir, false},
		{"missing file", missing, emptyDir, false},
		{"a directory is no CA file", dir + "/certs", emptyDir, false},
		{"empty file, certificate in the directory", empty, certDir, true},
		{"missing file, certificate in the second directory", missing, emptyDir + ":" + certDir, true},
		{"missing directory", missing, filepath.Join(dir, "none"), false},
	} {
		env := map[string]string{"SSL_CERT_FILE": tt.file, "SSL_CERT_DIR": tt.dir}
		if got := systemRoots(func(k string) string { return env[k] }); got != tt.want {
			t.Errorf("%s: systemRoots = %t, want %t", tt.name, got, tt.want)
		}
	}
}

// A CA file that cannot be read is skipped for the next, as Go does: a
// directory (os.ReadFile fails on it), or, when not root, a file without
// read permission.
func TestSystemRootsUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	cert := []byte("-----BEGIN CERTIFICATE-----\n")
	locked, next := filepath.Join(dir, "locked.pem"), filepath.Join(dir, "next.pem")
	if err := os.WriteFile(locked, cert, 0o000); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(next, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := []string{dir}
	if _, err := os.ReadFile(locked); err != nil {
		unreadable = append(unreadable, locked) // not root
	}
	files, dirs := certFiles, certDirs
	t.Cleanup(func() { certFiles, certDirs = files, dirs })
	for _, u := range unreadable {
		certFiles, certDirs = []string{u, next}, nil
		if !systemRoots(func(string) string { return "" }) {
			t.Errorf("%s unreadable, then a file with a certificate: systemRoots = false, want true", u)
		}
	}
}

// A system without CA files (the scratch image) verifies with the
// compiled-in roots: Amazon's among them.
func TestInstallWithoutSystemRoots(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SSL_CERT_FILE", filepath.Join(dir, "none.pem"))
	t.Setenv("SSL_CERT_DIR", dir)
	Install()
	pool, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	if pool == nil || !pool.Equal(fallbackPool()) {
		t.Error("with no CA file, the system pool is not the compiled-in roots: the fallback is not installed")
	}
}
