package roots

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// certFiles and certDirs are where crypto/x509 looks for the system's CA
// roots on Linux (root_linux.go), in its order; SSL_CERT_FILE replaces the
// files and SSL_CERT_DIR (colon separated) the directories (root_unix.go).
var (
	certFiles = []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	}
	certDirs = []string{
		"/etc/ssl/certs",
		"/etc/pki/tls/certs",
	}
)

// pemCert marks a PEM certificate; what Go's loader appends.
var pemCert = []byte("-----BEGIN CERTIFICATE-----")

// maxPrefix bounds what is read of a file: a CA bundle's first
// certificate starts well within it.
const maxPrefix = 64 << 10

// systemRoots reports whether crypto/x509 would load any system root, so
// never use the fallback: as Go does, the first CA file that can be read
// (the others are not looked at), then every file of the directories;
// each counts if it holds a PEM certificate (not parsed: that cost is what
// this package avoids). A wrong "no" costs only the parse (Go prefers the
// system's roots it loads); a wrong "yes" (a marker without a valid
// certificate) leaves TLS without roots, as a Go binary without the
// fallback would be.
func systemRoots(getenv func(string) string) bool {
	files, dirs := certFiles, certDirs
	if f := getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	if d := getenv("SSL_CERT_DIR"); d != "" {
		dirs = strings.Split(d, ":")
	}
	buf := make([]byte, maxPrefix)
	for _, f := range files {
		if has, readable := holdsCert(f, buf); readable {
			if has {
				return true
			}
			break
		}
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if sameDirSymlink(d, e) {
				continue // Go skips these: the target is read under its own name
			}
			if has, _ := holdsCert(filepath.Join(d, e.Name()), buf); has {
				return true
			}
		}
	}
	return false
}

// holdsCert reads up to len(buf) of file: readable is whether
// os.ReadFile would succeed (a directory cannot be read), has whether a
// certificate was seen.
func holdsCert(file string, buf []byte) (has, readable bool) {
	f, err := os.Open(file)
	if err != nil {
		return false, false
	}
	defer f.Close()
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return false, false
	}
	return bytes.Contains(buf[:n], pemCert), true
}

// sameDirSymlink is crypto/x509's isSameDirSymlink: a link whose target
// has no slash.
func sameDirSymlink(dir string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	target, err := os.Readlink(filepath.Join(dir, e.Name()))
	return err == nil && !strings.Contains(target, "/")
}
