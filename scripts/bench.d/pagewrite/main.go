//go:build unix

// pagewrite writes a new file in writes of one size and prints the system
// time they took: what the kernel's page cache costs for a write size on
// this machine, apart from any download (docs/benchmarks-history.md,
// "Writes of 32 KiB"). Run it as `go run ./scripts/bench.d/pagewrite -ws 131072 -o FILE`.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"syscall"
	"time"
)

func main() {
	size := flag.Int64("size", 1<<30, "bytes to write")
	ws := flag.Int("ws", 128<<10, "bytes a write")
	path := flag.String("o", "", "the file to write (replaced; removed at the end)")
	flag.Parse()
	// One 16 MiB buffer written from in turn, as a download writes its
	// 4 MiB pieces.
	buf := make([]byte, 16<<20)
	if *path == "" || *ws <= 0 || *ws > len(buf) {
		log.Fatalf("pagewrite: -o FILE and a -ws of 1 to %d are needed", len(buf))
	}
	os.Remove(*path)
	f, err := os.OpenFile(*path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	// The file can be a GiB: removed on every way out.
	fatal := func(err error) { os.Remove(*path); log.Fatal(err) }
	defer os.Remove(*path)
	for i := range buf {
		buf[i] = byte(i)
	}
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	start := time.Now()
	for off := int64(0); off < *size; off += int64(*ws) {
		n := min(int64(*ws), *size-off)
		o := off % int64(len(buf)) / int64(*ws) * int64(*ws)
		if o+n > int64(len(buf)) {
			o = 0
		}
		if _, err := f.WriteAt(buf[o:o+n], off); err != nil {
			fatal(err)
		}
	}
	wall := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	if err := f.Close(); err != nil {
		fatal(err)
	}
	fmt.Printf("ws=%d wall=%.2fs sys=%.2fs\n", *ws, wall.Seconds(),
		time.Duration(r1.Stime.Nano()-r0.Stime.Nano()).Seconds())
}
