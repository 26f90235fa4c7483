// Command netproxy puts a distant S3 endpoint in front of a loopback one, for
// scripts/bench: HTTPS (as AWS, HTTP/1.1 only), a round-trip time on every
// byte, and optionally throttling (503 SlowDown) as S3 does on a busy prefix.
// Only the benchmark uses it.
//
//	netproxy cert DIR
//	    write DIR/cert.pem (self-signed, for 127.0.0.1 and localhost; it is
//	    its own CA: give it to clients as AWS_CA_BUNDLE) and DIR/key.pem
//	netproxy serve -target URL -cert F -key F [-rtt D] [-window N] [-max-in-flight N] [-rate R] [-addr-file F] [-log F]
//	    listen on a free loopback port, write "https://127.0.0.1:PORT" to
//	    -addr-file (or stdout) and serve until killed; -log (or
//	    $NETPROXY_LOG) appends a line per request: when it reached the
//	    proxy (ms since the proxy started), how long the store took, the
//	    method, status and path, to see where a client's time goes
//
// The round trip is added below TLS, on the TCP stream: the client's bytes
// reach the TLS server half the round trip after they were sent, and the
// answer's bytes reach the client half a round trip after the server wrote
// them. So a request costs one round trip, and a new connection costs its
// TLS handshake's round trip, plus one more for the TCP handshake (held on
// the connection's first bytes, since the kernel answers the SYN at once).
// Each direction holds at most -window bytes in transit, as TCP's window
// does: one connection carries at most window bytes per half round trip.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("netproxy: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: netproxy cert DIR | netproxy serve -target URL -cert F -key F [...]")
	}
	switch os.Args[1] {
	case "cert":
		if len(os.Args) != 3 {
			log.Fatal("usage: netproxy cert DIR")
		}
		if err := writeCert(os.Args[2]); err != nil {
			log.Fatal(err)
		}
	case "serve":
		if err := serve(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	target := fs.String("target", "", "URL of the S3 server (plain HTTP on loopback)")
	certFile := fs.String("cert", "", "TLS certificate (PEM)")
	keyFile := fs.String("key", "", "TLS key (PEM)")
	rtt := fs.Duration("rtt", 0, "round-trip time added to every exchange")
	window := fs.Int("window", 4<<20, "bytes in transit in each direction of one connection")
	maxInFlight := fs.Int("max-in-flight", 0, "answer 503 SlowDown above this many requests in flight (0: no limit)")
	rate := fs.Float64("rate", 0, "answer 503 SlowDown above this many requests a second (0: no limit)")
	addrFile := fs.String("addr-file", "", "write the proxy's URL here (default: stdout)")
	logFile := fs.String("log", os.Getenv("NETPROXY_LOG"), "append a line per request to this file")
	fs.Parse(args)
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-target: want a URL, not %q", *target)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return err
	}

	// The HTTPS server, on a port of its own that only the delaying relay
	// below dials.
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	backend := http.DefaultTransport.(*http.Transport).Clone()
	backend.MaxIdleConns, backend.MaxIdleConnsPerHost = 1024, 1024
	backend.ForceAttemptHTTP2 = false
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the client signed this Host header
		},
		Transport:     backend,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	th := &s3test.Throttle{MaxInFlight: *maxInFlight, Rate: *rate}
	handler := th.Wrap(rp)
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		handler = logRequests(handler, f)
	}
	srv := &http.Server{
		Handler: handler,
		// HTTP/1.1 only, as S3: a client gets one request per connection
		// at a time, and opens as many connections as it has requests.
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	go srv.ServeTLS(inner, "", "")

	outer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := "https://" + outer.Addr().String() + "\n"
	if *addrFile != "" {
		// Written whole, then renamed: a reader never sees half an address.
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(addr), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			return err
		}
	} else {
		fmt.Print(addr)
	}
	var conns atomic.Int64
	go func() {
		for {
			c, err := outer.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go relay(c, inner.Addr().String(), *rtt, *window)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	fmt.Fprintf(os.Stderr, "netproxy: %d requests passed, %d answered 503 SlowDown, %d connections\n", th.Passed(), th.Throttled(), conns.Load())
	return nil
}

// logRequests writes a line per request to w, when it is answered.
func logRequests(next http.Handler, w io.Writer) http.Handler {
	began := time.Now()
	var mu sync.Mutex
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%9.1f %8.1f %-6s %d %s?%s\n", float64(start.Sub(began).Microseconds())/1000,
			float64(time.Since(start).Microseconds())/1000, r.Method, sw.status, r.URL.Path, r.URL.RawQuery)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

// Flush lets the reverse proxy stream bodies through the log.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// relay joins a client connection to the HTTPS server with half the round
// trip added in each direction.
func relay(client net.Conn, server string, rtt time.Duration, window int) {
	defer client.Close()
	up, err := net.Dial("tcp", server)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { pump(up, client, rtt/2, rtt, window); done <- struct{}{} }()
	go func() { pump(client, up, rtt/2, 0, window); done <- struct{}{} }()
	<-done
	<-done
}

type chunk struct {
	b   []byte
	due time.Time
}

const chunkSize = 32 << 10

// pump copies src to dst, each chunk written delay after it was read (the
// first one extra later), with at most window bytes held.
func pump(dst, src net.Conn, delay, extra time.Duration, window int) {
	q := make(chan chunk, max(1, window/chunkSize))
	go func() {
		defer close(q)
		for first := true; ; first = false {
			b := make([]byte, chunkSize)
			n, err := src.Read(b)
			if n > 0 {
				due := time.Now().Add(delay)
				if first {
					due = due.Add(extra)
				}
				q <- chunk{b[:n], due}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			// Unblock the reader: it sees its side closed and stops.
			src.Close()
			for range q {
			}
			break
		}
	}
	// Pass the end of the stream on, so the other side sees it.
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// writeCert makes a self-signed ECDSA certificate for loopback that is its
// own certificate authority.
func writeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "s3-asset-manager bench"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}
