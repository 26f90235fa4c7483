package s3test

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Fault is what the proxy does to one request.
type Fault int

const (
	Pass      Fault = iota // forward to the server
	SlowDown               // 503 SlowDown, as S3 throttles
	Internal               // 500 InternalError
	Drop                   // read part of the request, then close the connection
	Stall                  // answer nothing until the client gives up
	NotImpl                // 501 NotImplemented: refused a checksum header or aws-chunked body
	Forbidden              // 403 AccessDenied
	Corrupt                // forward an object or part upload (a PUT) with one byte of its body flipped
	// Faults in a response body, applied to a GET that returns one (others pass):
	FlipResponse  // one byte flipped in the middle of the body
	CutResponse   // the headers and half the body, then the connection is closed
	StallResponse // the headers and half the body, then nothing until the client gives up
	Conflict      // 409 ConditionalRequestConflict, as AWS answers a conditional write racing another
	HTMLNotFound  // 404 with an HTML page, as a web server or reverse proxy answers a path it does not serve
	EmptyNotFound // 404 with no body, as some gateways answer
	// LoseResponse forwards the request to the server, then closes the
	// connection without answering: the store did the work, and the client
	// never hears of it (a connection reset on the way back).
	LoseResponse
)

// lastFault is the last of the faults above.
const lastFault = LoseResponse

func (f Fault) String() string {
	return [...]string{"pass", "503 SlowDown", "500 InternalError", "dropped connection", "stall", "501 NotImplemented",
		"403 AccessDenied", "corrupted body", "flipped byte in a response", "response cut short", "stalled response",
		"409 ConditionalRequestConflict", "404 HTML page", "404 empty", "lost response"}[f]
}

// bodyFault marks a request whose response body the proxy is to spoil.
type bodyFault struct{}

// Proxy sits between the tool and a real server and misbehaves on purpose.
type Proxy struct {
	URL string
	// Plan picks the fault for the nth request (from 1); nil passes everything.
	Plan func(n int64, r *http.Request) Fault
	// RefuseChecksums answers 501 to requests carrying flexible-checksum
	// headers or aws-chunked bodies, as Cloudflare R2, Ceph RGW and others have.
	RefuseChecksums bool
	// RequireContentMD5 answers a DeleteObjects without Content-MD5 with 400
	// MissingContentMD5, as stores that hold to S3's documented requirement
	// do (MinIO before 2025, Oracle's), whatever other checksum it carries.
	RequireContentMD5 bool
	// HideChecksums drops x-amz-checksum-* headers from responses, as a
	// store that takes checksum headers without checking them answers.
	HideChecksums bool
	// Hold, when set, is called with each request before it is forwarded and
	// may block it: a test holds one request until another has arrived.
	Hold func(r *http.Request)
	// Observe, when set, is told of each forwarded request and the status the
	// server answered, before the client sees the answer.
	Observe func(r *http.Request, status int)
	// Throttle, if set, sees every request first and may answer 503
	// SlowDown; it also counts the requests in flight.
	Throttle *Throttle
	// DeleteKeyError, when set, gives the error code with which the store
	// refuses to delete a key ("" deletes it): in a DeleteObjects, a per-key
	// error inside a 200 answer (the other keys are deleted), as S3 answers
	// AccessDenied for a key a bucket policy protects, or now and then
	// InternalError; a DELETE of one, 403 or 500.
	DeleteKeyError func(key string) string

	// FlipSameWay makes FlipResponse spoil every body at the same byte in
	// the same way (a middlebox that always damages alike); otherwise each
	// flipped response is spoiled another way, as damage on the way is.
	FlipSameWay bool

	n          atomic.Int64
	flips      atomic.Int64 // flipped responses so far: each spoils its body another way
	handshakes atomic.Int64
	mu         sync.Mutex
	counts     map[Fault]int
}

// maxStall bounds a stall, so a client without timeouts cannot hang a test forever.
const maxStall = 60 * time.Second

// NewProxy starts a proxy in front of the server; it stops with the test.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, srv := newProxy(t, target)
	srv.Start()
	p.URL = srv.URL
	return p
}

// NewTLSProxy starts a proxy that serves HTTPS with cert in front of the
// server (plain HTTP behind it); it stops with the test.
func NewTLSProxy(t testing.TB, target string, cert tls.Certificate) *Proxy {
	t.Helper()
	p, srv := newProxy(t, target)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		// Called once for every ClientHello: a count of handshakes tried,
		// failed ones included, which never reach the handler.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			p.handshakes.Add(1)
			return nil, nil
		},
	}
	// Failed handshakes are what the tests make happen: not worth a log line.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	p.URL = srv.URL
	return p
}

// Handshakes is how many TLS handshakes clients began with a TLS proxy.
func (p *Proxy) Handshakes() int64 { return p.handshakes.Load() }

func newProxy(t testing.TB, target string) (*Proxy, *httptest.Server) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{counts: map[Fault]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the client signed this Host header
		},
		// Every byte read from the server goes on to the client at once: a
		// stalled body then stops exactly where the stall is, not up to a
		// buffer's worth before it.
		FlushInterval: -1,
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		if p.Observe != nil {
			p.Observe(resp.Request, resp.StatusCode)
		}
		if f, ok := resp.Request.Context().Value(bodyFault{}).(Fault); ok {
			if resp.StatusCode/100 == 2 && resp.ContentLength > 1 {
				s := &spoilReader{r: resp.Body, fault: f, at: resp.ContentLength / 2, mask: 0xff, done: resp.Request.Context().Done()}
				if f == FlipResponse && !p.FlipSameWay {
					// Damage on the way is not the same twice: a body spoiled
					// the same way on every fetch is what a replaced object
					// or an altered record looks like, which download names
					// as such.
					k := p.flips.Add(1)
					s.at = (resp.ContentLength/2 + k) % resp.ContentLength
					s.mask = byte(k%255) + 1
				}
				resp.Body = s
			} else {
				f = Pass // nothing to spoil
			}
			p.count(f)
		}
		if p.HideChecksums {
			for k := range resp.Header {
				if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
					resp.Header.Del(k)
				}
			}
		}
		return nil
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := Pass
		p.mu.Lock()
		plan := p.Plan
		p.mu.Unlock()
		if p.RequireContentMD5 && r.Method == http.MethodPost && r.URL.Query().Has("delete") && r.Header.Get("Content-Md5") == "" {
			s3Error(w, 400, "MissingContentMD5", "Missing required header for this request: Content-Md5.")
			return
		}
		if p.RefuseChecksums && carriesChecksum(r) {
			f = NotImpl
		} else if plan != nil {
			f = plan(p.n.Add(1), r)
		}
		if f == Corrupt && (r.Method != http.MethodPut || r.ContentLength <= 0) {
			f = Pass // no object data to corrupt
		}
		switch f {
		case FlipResponse, CutResponse, StallResponse:
			if r.Method != http.MethodGet {
				f = Pass
			}
		}
		if f != FlipResponse && f != CutResponse && f != StallResponse {
			p.count(f) // a response fault is counted once it is known to apply
		}
		if p.Hold != nil && (f == Pass || f == Corrupt || f == LoseResponse) {
			p.Hold(r)
		}
		if f == Pass && p.DeleteKeyError != nil && refuseDelete(w, r, u, p.DeleteKeyError) {
			return
		}
		switch f {
		case Pass:
			rp.ServeHTTP(w, r)
		case FlipResponse, CutResponse, StallResponse:
			rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyFault{}, f)))
		case Corrupt:
			// In the middle, where neither headers nor framing notice it:
			// only a store that checks the body against its digest can.
			r.Body = &flipReader{r: r.Body, at: r.ContentLength / 2}
			rp.ServeHTTP(w, r)
		case SlowDown:
			s3Error(w, 503, "SlowDown", "Please reduce your request rate.")
		case Internal:
			s3Error(w, 500, "InternalError", "We encountered an internal error. Please try again.")
		case Forbidden:
			s3Error(w, 403, "AccessDenied", "Access Denied")
		case Conflict:
			s3Error(w, 409, "ConditionalRequestConflict", "A conflicting conditional operation is currently in progress against this resource. Please try again.")
		case HTMLNotFound:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(404)
			fmt.Fprint(w, "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
		case EmptyNotFound:
			w.WriteHeader(404)
		case LoseResponse:
			rp.ServeHTTP(httptest.NewRecorder(), r) // done by the server, answer dropped
			hangUp(w)
		case NotImpl:
			s3Error(w, 501, "NotImplemented", "A header you provided implies functionality that is not implemented.")
		case Drop:
			io.CopyN(io.Discard, r.Body, 64<<10)
			hangUp(w)
		case Stall:
			// Take the whole body, then say nothing: once the body is read the
			// server notices the client hanging up, which ends the stall.
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(maxStall):
			}
		}
	})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := p.Throttle; t != nil {
			t.Wrap(handler).ServeHTTP(w, r)
			return
		}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return p, srv
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// SetPlan sets Plan where the requests that read it may come from another
// process: the race detector sees no order through a socket, and this lock
// gives it one.
func (p *Proxy) SetPlan(plan func(n int64, r *http.Request) Fault) {
	p.mu.Lock()
	p.Plan = plan
	p.mu.Unlock()
}

func (p *Proxy) count(f Fault) {
	p.mu.Lock()
	p.counts[f]++
	p.mu.Unlock()
}

// Count is how often the proxy applied a fault.
func (p *Proxy) Count(f Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[f]
}

// Counts describes what the proxy did, for failure messages.
func (p *Proxy) Counts() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for f := Pass; f <= lastFault; f++ {
		fmt.Fprintf(&b, "%s: %d; ", f, p.counts[f])
	}
	return b.String()
}

// EveryNth fails every nth request, cycling through faults.
func EveryNth(n int64, faults ...Fault) func(int64, *http.Request) Fault {
	return func(i int64, _ *http.Request) Fault {
		if i%n != 0 {
			return Pass
		}
		return faults[(i/n)%int64(len(faults))]
	}
}

// AtMost lets plan inject f only n times, then passes those requests: a
// stall costs the client's whole request timeout in real time, and one shows
// what many would.
func AtMost(n int64, f Fault, plan func(int64, *http.Request) Fault) func(int64, *http.Request) Fault {
	var seen atomic.Int64
	return func(i int64, r *http.Request) Fault {
		got := plan(i, r)
		if got == f && seen.Add(1) > n {
			return Pass
		}
		return got
	}
}

// refuseDelete answers a delete request, refusing the keys for which
// refuse gives an error code, and reports whether it answered. The keys not
// refused are deleted with the server's own credentials (the client's
// request is signed over its body, which names the refused ones too).
func refuseDelete(w http.ResponseWriter, r *http.Request, target *url.URL, refuse func(string) string) bool {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodDelete && key != "" && r.URL.Query().Get("uploadId") == "":
		code := refuse(key)
		switch code {
		case "":
			return false
		case "AccessDenied":
			s3Error(w, 403, code, "Access Denied")
		default:
			s3Error(w, 500, code, "Refused by the test proxy")
		}
		return true
	case r.Method != http.MethodPost || !r.URL.Query().Has("delete"):
		return false
	}
	var req struct {
		Objects []struct{ Key string } `xml:"Object"`
	}
	if err := xml.NewDecoder(r.Body).Decode(&req); err != nil {
		s3Error(w, 400, "MalformedXML", err.Error())
		return true
	}
	type keyError struct {
		Key     string
		Code    string
		Message string
	}
	var result struct {
		XMLName xml.Name   `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
		Errors  []keyError `xml:"Error"`
	}
	var allowed []types.ObjectIdentifier
	for _, o := range req.Objects {
		if code := refuse(o.Key); code != "" {
			result.Errors = append(result.Errors, keyError{o.Key, code, "Refused by the test proxy"})
		} else {
			allowed = append(allowed, types.ObjectIdentifier{Key: aws.String(o.Key)})
		}
	}
	if len(allowed) > 0 {
		out, err := (&Server{Endpoint: target.String()}).Client().DeleteObjects(r.Context(), &s3.DeleteObjectsInput{
			Bucket: &bucket, Delete: &types.Delete{Objects: allowed, Quiet: aws.Bool(true)}})
		if err != nil {
			s3Error(w, 500, "InternalError", err.Error())
			return true
		}
		for _, e := range out.Errors {
			result.Errors = append(result.Errors, keyError{aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)})
		}
	}
	w.Header().Set("Content-Type", "application/xml")
	body, _ := xml.Marshal(result)
	w.Write(append([]byte(xml.Header), body...))
	return true
}

func carriesChecksum(r *http.Request) bool {
	for k := range r.Header {
		k = strings.ToLower(k)
		if strings.HasPrefix(k, "x-amz-checksum-") || k == "x-amz-sdk-checksum-algorithm" || k == "x-amz-trailer" {
			return true
		}
	}
	return strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") ||
		strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-")
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>s3am-proxy</RequestId></Error>`, code, msg)
}

// flipReader inverts the byte at offset at as it passes.
type flipReader struct {
	r       io.ReadCloser
	pos, at int64
}

func (f *flipReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if i := f.at - f.pos; i >= 0 && i < int64(n) {
		b[i] ^= 0xff
	}
	f.pos += int64(n)
	return n, err
}

func (f *flipReader) Close() error { return f.r.Close() }

// spoilReader passes a response body on until its middle, then flips a
// byte there, or fails (the proxy then closes the connection), or waits
// until the client hangs up.
type spoilReader struct {
	r       io.ReadCloser
	fault   Fault
	pos, at int64
	mask    byte // what a flipped byte is XORed with
	done    <-chan struct{}
}

func (s *spoilReader) Read(b []byte) (int, error) {
	if s.fault != FlipResponse && s.pos >= s.at {
		if s.fault == StallResponse {
			select {
			case <-s.done:
			case <-time.After(maxStall):
			}
		}
		return 0, errors.New("s3test proxy: response body cut short on purpose")
	}
	if s.fault != FlipResponse && int64(len(b)) > s.at-s.pos {
		b = b[:s.at-s.pos]
	}
	n, err := s.r.Read(b)
	if i := s.at - s.pos; s.fault == FlipResponse && i >= 0 && i < int64(n) {
		b[i] ^= s.mask
	}
	s.pos += int64(n)
	return n, err
}

func (s *spoilReader) Close() error { return s.r.Close() }
