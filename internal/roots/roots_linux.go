package roots

import "os"

// certFiles are where crypto/x509 looks for the system's CA file on Linux
// (root_linux.go), in its order; SSL_CERT_FILE replaces them.
var certFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/tls/cacert.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// systemRoots reports whether the first CA file crypto/x509 would read
// exists and is not empty. A wrong answer either way costs nothing but
// time: with roots installed, Go still prefers any it loads from the
// system; without, a system whose file holds no valid certificate at all
// would have none (as with a Go binary without the fallback).
func systemRoots(getenv func(string) string) bool {
	files := certFiles
	if f := getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			return fi.Mode().IsRegular() && fi.Size() > 0
		}
	}
	return false
}
