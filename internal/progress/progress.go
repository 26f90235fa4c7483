// Package progress shows how a long transfer is going: a bar on a terminal
// (schollz/progressbar), and in a CI log, where a bar is noise, a plain line
// every few seconds.
package progress

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Interval between lines in a CI log.
const Interval = 5 * time.Second

// Reporter counts transferred bytes and finished files.
type Reporter struct {
	total     int64
	files     int
	done      atomic.Int64
	filesDone atomic.Int64
	start     time.Time

	w    io.Writer
	bar  *progressbar.ProgressBar // terminal only
	mu   sync.Mutex               // serialises output to w
	stop chan struct{}
	wg   sync.WaitGroup
}

// Start reports on a transfer of total bytes in files files (what:
// "uploading", "downloading"). On a terminal it draws a bar; elsewhere it writes a line at every tick (nil: every
// Interval). Lines start only after the first tick, so short transfers stay quiet.
func Start(w io.Writer, terminal bool, what string, total int64, files int, tick <-chan time.Time) *Reporter {
	r := &Reporter{total: total, files: files, start: time.Now(), w: w, stop: make(chan struct{})}
	if terminal {
		r.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription(what),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetWidth(30),
		)
		return r
	}
	var ticker *time.Ticker
	if tick == nil {
		ticker = time.NewTicker(Interval)
		tick = ticker.C
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if ticker != nil {
			defer ticker.Stop()
		}
		for {
			select {
			case <-r.stop:
				return
			case <-tick:
				r.mu.Lock()
				fmt.Fprintln(r.w, r.Line())
				r.mu.Unlock()
			}
		}
	}()
	return r
}

// Add counts n more bytes transferred.
func (r *Reporter) Add(n int64) {
	r.done.Add(n)
	if r.bar != nil {
		r.mu.Lock()
		r.bar.Add64(n)
		r.mu.Unlock()
	}
}

// FileDone counts a finished file.
func (r *Reporter) FileDone() { r.filesDone.Add(1) }

// Line is the CI log line: bytes, share, files, speed.
func (r *Reporter) Line() string {
	done := r.done.Load()
	pct := 100.0
	if r.total > 0 {
		pct = float64(done) * 100 / float64(r.total)
	}
	el := time.Since(r.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el
	}
	return fmt.Sprintf("  progress: %s of %s (%.0f%%), %d of %s, %s/s",
		Size(done), Size(r.total), pct, r.filesDone.Load(), words.Count(int(r.files), "file", "files"), Size(int64(rate)))
}

// Writer returns a writer for log lines that keeps them from tearing the bar.
func (r *Reporter) Writer() io.Writer { return writerFunc(r.write) }

func (r *Reporter) write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		r.bar.Clear()
		defer r.bar.RenderBlank()
	}
	return r.w.Write(p)
}

// Stop ends the report; the bar is cleared.
func (r *Reporter) Stop() {
	close(r.stop)
	r.wg.Wait()
	if r.bar != nil {
		r.mu.Lock()
		r.bar.Finish()
		r.mu.Unlock()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Size formats a byte count for people: "512 B", "1.5 MiB".
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	// Move up a unit before rounding would print "1024.0".
	v, exp := float64(n)/unit, 0
	for v >= unit-0.05 && exp < 5 {
		v /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[exp])
}
