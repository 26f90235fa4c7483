package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// In a CI log: one plain line per tick, no bar, nothing before the first tick.
func TestLogLines(t *testing.T) {
	var out syncBuffer
	tick := make(chan time.Time)
	r := Start(&out, false, "uploading", 4<<20, 3, tick)
	r.Add(1 << 20)
	r.FileDone()
	if out.String() != "" {
		t.Fatalf("wrote before the first tick: %q", out.String())
	}
	tick <- time.Now()
	tick <- time.Now() // unbuffered: taken only once the first line is written
	r.Stop()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 1 || !strings.Contains(lines[0], "1.0 MiB of 4.0 MiB (25%), 1 of 3 files") {
		t.Fatalf("lines = %q", lines)
	}
	if strings.ContainsAny(out.String(), "\r\x1b") {
		t.Errorf("terminal control characters in a CI log: %q", out.String())
	}
}

// On a terminal: a bar, and log lines written through Writer do not tear it.
func TestBar(t *testing.T) {
	var out syncBuffer
	r := Start(&out, true, "uploading", 1000, 1, nil)
	r.Add(500)
	r.Writer().Write([]byte("a log line\n"))
	r.Add(500)
	r.Stop()
	s := out.String()
	if !strings.Contains(s, "a log line\n") || !strings.Contains(s, "uploading") {
		t.Errorf("output = %q", s)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{
		0:                  "0 B",
		1023:               "1023 B",
		1024:               "1.0 KiB",
		1536:               "1.5 KiB",
		1<<20 - 1:          "1.0 MiB",
		5<<20 + 123:        "5.0 MiB",
		3 << 30:            "3.0 GiB",
		1<<62 + 1<<61:      "6.0 EiB",
		1<<40 + 1<<39 + 99: "1.5 TiB",
	} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
