package roots

import (
	"crypto/x509"
	"path/filepath"
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
