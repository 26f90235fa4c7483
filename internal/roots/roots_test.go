package roots

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

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

func TestSystemRoots(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only: elsewhere the roots are always installed")
	}
	dir := t.TempDir()
	full, empty := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "empty.pem")
	os.WriteFile(full, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644)
	os.WriteFile(empty, nil, 0o644)
	for _, tt := range []struct {
		file string
		want bool
	}{
		{full, true},
		{empty, false},
		{filepath.Join(dir, "missing.pem"), false},
		{dir, false}, // a directory is no CA file
	} {
		env := func(k string) string {
			if k == "SSL_CERT_FILE" {
				return tt.file
			}
			return ""
		}
		if got := systemRoots(env); got != tt.want {
			t.Errorf("SSL_CERT_FILE=%s: systemRoots = %t, want %t", tt.file, got, tt.want)
		}
	}
}
