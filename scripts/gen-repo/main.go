// Command gen-repo writes a deterministic git repository for benchmarking the
// code hash against `git status`:
//
//	go run ./scripts/gen-repo [-trees 10] [-files 2000] [-size 16384] [-ignored 0] [-seed 1] PATH
//
// It makes TREES directories lambdas/fnNN/, each with FILES files of SIZE bytes
// spread over nested directories (lambdas/fn03/src/pkg07/mod2/f0123.py), a
// .gitignore with node_modules/, optionally IGNORED files per tree under
// lambdas/fnNN/node_modules/ (ignored, never committed), and commits it all
// with fixed author, committer and dates. The same flags give the same commit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

func main() {
	if err := realMain(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gen-repo:", err)
		os.Exit(1)
	}
}

type spec struct {
	trees, files, size, ignored int
	seed                        uint64
}

func realMain(args []string) error {
	fs := flag.NewFlagSet("gen-repo", flag.ContinueOnError)
	var s spec
	fs.IntVar(&s.trees, "trees", 10, "number of lambdas/fnNN/ trees")
	fs.IntVar(&s.files, "files", 2000, "files per tree")
	fs.IntVar(&s.size, "size", 16384, "bytes per file")
	fs.IntVar(&s.ignored, "ignored", 0, "ignored files per tree, under lambdas/fnNN/node_modules/")
	fs.Uint64Var(&s.seed, "seed", 1, "random seed for file contents")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./scripts/gen-repo [flags] PATH\n\n"+
			"Writes a git repository at PATH (which must not exist or be empty) with TREES\n"+
			"directories lambdas/fnNN/ of FILES files of SIZE bytes each, and commits it.\n"+
			"Defaults: 10 trees x 2,000 files x 16 KiB = 20,000 files, about 315 MiB.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		os.Exit(2)
	}
	if fs.NArg() != 1 || s.trees < 1 || s.files < 1 || s.size < 0 || s.ignored < 0 {
		fs.Usage()
		os.Exit(2)
	}
	dir := fs.Arg(0)
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s exists and is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("node_modules/\n*.pyc\n"), 0o644); err != nil {
		return err
	}
	if err := writeTrees(dir, s); err != nil {
		return err
	}
	ctx := context.Background()
	for _, args := range [][]string{
		{"-c", "init.defaultBranch=main", "init", "-q"},
		{"add", "-A"},
		{"commit", "-q", "-m", fmt.Sprintf("generated: %d trees x %d files x %d bytes, seed %d", s.trees, s.files, s.size, s.seed)},
	} {
		if err := git(ctx, dir, args...); err != nil {
			return err
		}
	}
	fmt.Printf("%s: %d files, %d MiB\n", dir, s.trees*s.files+1, int64(s.trees)*int64(s.files)*int64(s.size)>>20)
	return nil
}

// path gives file i of a tree: 20 files a directory, 10 directories a package.
func path(tree, i int, ext string) string {
	return fmt.Sprintf("lambdas/fn%02d/src/pkg%02d/mod%d/f%04d.%s", tree, i/200, i/20%10, i, ext)
}

var exts = []string{"py", "js", "go", "json", "txt"}

// writeTrees writes the files in parallel; each file's content comes from its
// own generator seeded by (seed, tree, index), so the order of writing does not matter.
func writeTrees(dir string, s spec) error {
	type job struct {
		rel       string
		tree, idx int
	}
	var jobs []job
	for t := range s.trees {
		for i := range s.files {
			jobs = append(jobs, job{path(t, i, exts[i%len(exts)]), t, i})
		}
		for i := range s.ignored {
			jobs = append(jobs, job{fmt.Sprintf("lambdas/fn%02d/node_modules/dep%02d/index%04d.js", t, i/50, i), t, -1 - i})
		}
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range max(4, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			buf := make([]byte, s.size)
			for {
				n := int(next.Add(1)) - 1
				if n >= len(jobs) {
					return
				}
				j := jobs[n]
				fill(buf, rand.New(rand.NewPCG(s.seed, uint64(j.tree)<<32|uint64(uint32(j.idx)))))
				p := filepath.Join(dir, filepath.FromSlash(j.rel))
				err := os.MkdirAll(filepath.Dir(p), 0o755)
				if err == nil {
					err = os.WriteFile(p, buf, 0o644)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fill writes printable lines, so the files look like (and diff like) text.
func fill(buf []byte, r *rand.Rand) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _" // 64: 6 bits a byte
	var bits uint64
	for i := range buf {
		if i%64 == 63 {
			buf[i] = '\n'
			continue
		}
		if i%10 == 0 {
			bits = r.Uint64()
		}
		buf[i] = alphabet[bits&63]
		bits >>= 6
	}
}

func git(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=gen-repo", "GIT_AUTHOR_EMAIL=gen-repo@example.com", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=gen-repo", "GIT_COMMITTER_EMAIL=gen-repo@example.com", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
