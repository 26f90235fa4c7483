// Package roots puts Mozilla's CA roots, compiled into the binary, behind
// Go's system roots where the system has none: the scratch image has no
// certificate files. It is golang.org/x/crypto/x509roots/fallback, except
// that on a Linux system where Go loads CA roots of its own (a readable CA
// file or directory file holding a certificate) they are not parsed: Go
// never uses them there, and parsing them took 2 ms of every run's start
// (a found check takes 20).
package roots

import (
	"crypto/x509"
	"os"
	"strings"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// Install makes the compiled-in roots Go's fallback, unless the system
// has roots of its own (systemRoots), when Go would not use them. Once
// per process, before the first TLS connection.
func Install() {
	if systemRoots(os.Getenv) && !strings.Contains(os.Getenv("GODEBUG"), "x509usefallbackroots=1") {
		return
	}
	x509.SetFallbackRoots(fallbackPool())
}

// fallbackPool is what the fallback package's init makes.
func fallbackPool() *x509.CertPool {
	p := x509.NewCertPool()
	for c := range bundle.Roots() {
		cert, err := x509.ParseCertificate(c.Certificate)
		if err != nil {
			panic(err)
		}
		if c.Constraint == nil {
			p.AddCert(cert)
		} else {
			p.AddCertWithConstraint(cert, c.Constraint)
		}
	}
	return p
}
