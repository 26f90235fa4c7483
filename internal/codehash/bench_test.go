package codehash

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/gitrepo"
)

// BenchmarkCompute hashes a generated, freshly committed repository of 5,000
// files of 4 KiB (S3AM_BENCH_FILES sets another count), or the existing
// checkout at S3AM_BENCH_REPO, e.g. one made by scripts/gen-repo:
//
//	go run ./scripts/gen-repo /tmp/big
//	S3AM_BENCH_REPO=/tmp/big go test -run '^$' -bench Compute ./internal/codehash
func BenchmarkCompute(b *testing.B) {
	dir := os.Getenv("S3AM_BENCH_REPO")
	if dir == "" {
		n := 5000
		if s := os.Getenv("S3AM_BENCH_FILES"); s != "" {
			var err error
			if n, err = strconv.Atoi(s); err != nil || n < 1 {
				b.Fatalf("S3AM_BENCH_FILES=%q: want a positive number", s)
			}
		}
		dir = benchRepo(b, n, 4096)
	}
	repo, err := gitrepo.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	pats, err := ParsePatterns("**")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var files int
	start := cpuTime()
	for b.Loop() {
		res, err := Compute(ctx, repo, pats, "")
		if err != nil {
			b.Fatal(err)
		}
		files = len(res.Files)
	}
	reportCPU(b, start)
	b.ReportMetric(float64(files), "files/op")
}

// benchRepo commits n files of size bytes, 20 to a directory two levels
// down, plus a .gitignore and some ignored files, with fixed contents.
func benchRepo(b *testing.B, n, size int) string {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, size)
	files := map[string]string{".gitignore": "node_modules/\n"}
	for i := range n {
		for j := range buf {
			buf[j] = 'a' + byte(r.IntN(26))
		}
		files[fmt.Sprintf("lambdas/fn%02d/d%03d/f%05d.py", i/1000, i/20%50, i)] = string(buf)
	}
	for i := range 100 {
		files[fmt.Sprintf("lambdas/fn00/node_modules/dep/f%03d.js", i)] = "ignored"
	}
	return initRepo(b, files)
}

// BenchmarkComputeComponents hashes the same repository as BenchmarkCompute
// as components, in one pass: 100 named components, two for each directory
// lambdas/fnNN/dNNN/ of the first thousand files, plus "lambdas/*" (a
// component each thousand), with the shared filter ".gitignore";
// S3AM_BENCH_COMPONENTS gives other lines. Compare its ns/op with
// BenchmarkCompute's to see what components cost.
func BenchmarkComputeComponents(b *testing.B) {
	dir := os.Getenv("S3AM_BENCH_REPO")
	if dir == "" {
		dir = benchRepo(b, 5000, 4096)
	}
	spec := os.Getenv("S3AM_BENCH_COMPONENTS")
	if spec == "" {
		var b strings.Builder
		for i := range 100 {
			fmt.Fprintf(&b, "c%03d: lambdas/fn00/d%03d/** !lambdas/fn00/d%03d/*9.py\n", i, i/2, i/2)
		}
		spec = b.String() + "lambdas/*"
	}
	repo, err := gitrepo.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	shared, _ := ParsePatterns(".gitignore")
	comps, err := ParseComponents(spec)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var n int
	for b.Loop() {
		res, err := ComputeComponents(ctx, repo, shared, comps, "")
		if err != nil {
			b.Fatal(err)
		}
		n = len(res)
	}
	b.ReportMetric(float64(n), "components/op")
}
