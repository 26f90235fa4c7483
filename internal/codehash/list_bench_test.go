package codehash

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/nsmithuk/s3-asset-manager/internal/gitrepo"
)

// benchList is the list of the checkout at S3AM_BENCH_REPO (made by
// scripts/gen-repo, filter "**"), or else 200,000 files with the paths
// gen-repo makes (`-trees 10 -files 20000`) and random blob ids: writing and
// reading a list depends on its paths and ids only, not on the files.
//
//	go test -run '^$' -bench List -benchmem ./internal/codehash
//	go run ./scripts/gen-repo -trees 10 -files 20000 -size 1600 /tmp/repo200k
//	S3AM_BENCH_REPO=/tmp/repo200k go test -run '^$' -bench List ./internal/codehash
func benchList(b *testing.B) *List {
	b.Helper()
	if dir := os.Getenv("S3AM_BENCH_REPO"); dir != "" {
		repo, err := gitrepo.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		pats, _ := ParsePatterns("**")
		res, err := Compute(context.Background(), repo, pats, "")
		if err != nil {
			b.Fatal(err)
		}
		return NewList(res, pats, "")
	}
	r := rand.New(rand.NewPCG(1, 2))
	exts := []string{"py", "js", "ts", "go", "json"}
	var fs []gitrepo.File
	for tree := range 10 {
		for i := range 20000 {
			var id plumbing.Hash
			for k := range id {
				id[k] = byte(r.Uint32())
			}
			p := fmt.Sprintf("lambdas/fn%02d/src/pkg%02d/mod%d/f%04d.%s", tree, i/200, i/20%10, i, exts[i%len(exts)])
			fs = append(fs, gitrepo.File{Path: p, Mode: filemode.Regular, ID: id})
		}
	}
	slices.SortFunc(fs, func(a, b gitrepo.File) int { return strings.Compare(a.Path, b.Path) })
	return &List{CodeHash: digest(fs, ""), SaltDigest: SaltDigest(""), Patterns: []string{"**"}, Files: fs}
}

// reportCPU adds the CPU milliseconds an op took, from start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// benchEncode times encode, reporting its CPU time and the bytes it gives.
func benchEncode(b *testing.B, encode func() ([]byte, error)) {
	var size int
	start := cpuTime()
	for b.Loop() {
		data, err := encode()
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	reportCPU(b, start)
	b.ReportMetric(float64(size), "bytes")
}

func BenchmarkListEncode(b *testing.B) {
	l := benchList(b)
	benchEncode(b, l.EncodeBytes)
	b.ReportMetric(float64(len(l.Files)), "files")
}

// BenchmarkListEncodeStored: the list as check keeps it (gzip's stored
// blocks).
func BenchmarkListEncodeStored(b *testing.B) {
	benchEncode(b, benchList(b).EncodeStored)
}

// BenchmarkListCompress: upload's re-coding of a stored list for the bucket.
func BenchmarkListCompress(b *testing.B) {
	stored, err := benchList(b).EncodeStored()
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	start := cpuTime()
	for b.Loop() {
		out.Reset()
		if err := Compress(&out, bytes.NewReader(stored)); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
	b.ReportMetric(float64(out.Len()), "bytes")
}

func BenchmarkListDecode(b *testing.B) {
	l := benchList(b)
	data, err := l.EncodeBytes()
	if err != nil {
		b.Fatal(err)
	}
	start := cpuTime()
	for b.Loop() {
		if _, err := DecodeList(data); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
	b.ReportMetric(float64(len(l.Files)), "files")
}

// BenchmarkListCompare: the difference of two 200,000-file lists with about
// 1,000 files modified.
func BenchmarkListCompare(b *testing.B) {
	old := benchList(b)
	cur := &List{Patterns: old.Patterns, Files: slices.Clone(old.Files)}
	changed := 0
	for i := 0; i < len(cur.Files); i += len(cur.Files) / 1000 {
		cur.Files[i].ID[0] ^= 1
		changed++
	}
	start := cpuTime()
	for b.Loop() {
		d := Compare(old, cur)
		if len(d.Changes) != changed {
			b.Fatalf("%d changes", len(d.Changes))
		}
	}
	reportCPU(b, start)
}

// BenchmarkDigest: the code hash of a list's files (what follows the walk).
func BenchmarkDigest(b *testing.B) {
	l := benchList(b)
	start := cpuTime()
	for b.Loop() {
		if digest(l.Files, "") != l.CodeHash {
			b.Fatal("digest differs")
		}
	}
	reportCPU(b, start)
}
