package gitrepo

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// indexBytes makes a repository, changes it, and returns its index file.
func indexBytes(t testing.TB, change func(dir string)) []byte {
	t.Helper()
	dir := initRepo(t, map[string]string{"a.txt": "a", "b/c.txt": "c", "b/d/e.txt": "e", "ünï/côdé.txt": "u"})
	if change != nil {
		change(dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// indexCases are indexes in every shape git writes that decodeIndex reads.
func indexCases(t testing.TB) map[string][]byte {
	long := strings.Repeat("long-directory-name/", 230) + "file.txt" // over 0xfff bytes: no length in the flags
	blob := blobID([]byte("x")).String()
	cases := map[string]func(dir string){
		"version 2 with cache tree": nil,
		"version 3: intent-to-add and skip-worktree": func(dir string) {
			os.WriteFile(filepath.Join(dir, "new.txt"), []byte("n"), 0o644)
			git(t, dir, "add", "-N", "new.txt")
			git(t, dir, "update-index", "--skip-worktree", "a.txt")
		},
		"version 4": func(dir string) { git(t, dir, "update-index", "--index-version", "4") },
		"version 4, long name": func(dir string) {
			git(t, dir, "update-index", "--index-version", "4")
			git(t, dir, "update-index", "--add", "--cacheinfo", "100644,"+blob+","+long)
		},
		"long name": func(dir string) {
			git(t, dir, "update-index", "--add", "--cacheinfo", "100644,"+blob+","+long)
		},
		"untracked cache, end-of-index and offset table extensions": func(dir string) {
			git(t, dir, "config", "index.recordEndOfIndexEntries", "true")
			git(t, dir, "config", "index.recordOffsetTable", "true")
			git(t, dir, "config", "index.threads", "2")
			git(t, dir, "update-index", "--untracked-cache")
			git(t, dir, "status", "--porcelain")
			git(t, dir, "update-index", "--index-version", "2")
		},
		"unmerged stages": func(dir string) {
			git(t, dir, "checkout", "-q", "-b", "other")
			os.WriteFile(filepath.Join(dir, "a.txt"), []byte("other"), 0o644)
			git(t, dir, "commit", "-q", "-am", "other")
			git(t, dir, "checkout", "-q", "-")
			os.WriteFile(filepath.Join(dir, "a.txt"), []byte("mine"), 0o644)
			git(t, dir, "commit", "-q", "-am", "mine")
			// Fails, with the conflict left in the index.
			cmd := exec.Command("git", "merge", "-q", "other")
			cmd.Dir = dir
			cmd.Run()
		},
		"empty": func(dir string) { git(t, dir, "rm", "-q", "-r", "--cached", ".") },
	}
	out := map[string][]byte{}
	for name, change := range cases {
		out[name] = indexBytes(t, change)
	}
	return out
}

// decodeIndex agrees with go-git's decoder on every index shape.
func TestDecodeIndexMatchesGoGit(t *testing.T) {
	for name, b := range indexCases(t) {
		t.Run(name, func(t *testing.T) {
			want := &index.Index{}
			if err := index.NewDecoder(bytes.NewReader(b)).Decode(want); err != nil {
				t.Fatalf("go-git: %v", err)
			}
			got, err := decodeIndex(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != want.Version || len(got.Entries) != len(want.Entries) {
				t.Fatalf("version %d, %d entries; go-git: version %d, %d entries", got.Version, len(got.Entries), want.Version, len(want.Entries))
			}
			for i := range want.Entries {
				if !reflect.DeepEqual(*got.Entries[i], *want.Entries[i]) {
					t.Errorf("entry %d:\n got %+v\nwant %+v", i, *got.Entries[i], *want.Entries[i])
				}
			}
			// The cases must be what they say, or they test nothing new.
			if name == "unmerged stages" && got.Entries[0].Stage == 0 {
				t.Error("no merge conflict was made")
			}
			if strings.HasPrefix(name, "untracked cache") {
				for _, ext := range []string{"UNTR", "EOIE", "IEOT"} {
					if !bytes.Contains(b, []byte(ext)) {
						t.Errorf("git wrote no %s extension", ext)
					}
				}
			}

			// index.skipHash: a zero checksum is accepted, a wrong one is not.
			z := bytes.Clone(b)
			clear(z[len(z)-20:])
			if zi, err := decodeIndex(z); err != nil || len(zi.Entries) != len(want.Entries) {
				t.Errorf("zero checksum: %v", err)
			}
			z[len(z)-1] = 1
			if _, err := decodeIndex(z); !errors.Is(err, index.ErrInvalidChecksum) {
				t.Errorf("wrong checksum: %v", err)
			}
		})
	}
}

func TestDecodeIndexRefusesRequiredExtensions(t *testing.T) {
	b := indexBytes(t, func(dir string) { git(t, dir, "update-index", "--split-index") })
	if _, err := decodeIndex(b); !errors.Is(err, index.ErrUnknownExtension) {
		t.Errorf("split index: %v, want ErrUnknownExtension", err)
	}
}

// No input makes decodeIndex panic or allocate beyond its input's size, and
// whatever go-git's decoder reads, decodeIndex reads the same.
func FuzzDecodeIndex(f *testing.F) {
	for _, b := range indexCases(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.Clone(b) // the engine's bytes are not ours to change
		if len(b) > sha1.Size {
			// A valid checksum, or almost nothing gets past it.
			sum := sha1.Sum(b[:len(b)-sha1.Size])
			copy(b[len(b)-sha1.Size:], sum[:])
		}
		idx, err := decodeIndex(b)
		if err == nil && len(idx.Entries) > len(b) {
			t.Fatalf("%d entries from %d bytes", len(idx.Entries), len(b))
		}
		want := &index.Index{}
		if index.NewDecoder(bytes.NewReader(b)).Decode(want) != nil {
			return // refused by go-git: decodeIndex may refuse it too, or read more
		}
		if err != nil {
			t.Fatalf("go-git reads %d entries, decodeIndex refuses: %v", len(want.Entries), err)
		}
		if idx.Version != want.Version || len(idx.Entries) != len(want.Entries) {
			t.Fatalf("version %d, %d entries; go-git: version %d, %d entries", idx.Version, len(idx.Entries), want.Version, len(want.Entries))
		}
		for i := range want.Entries {
			if !reflect.DeepEqual(*idx.Entries[i], *want.Entries[i]) {
				t.Fatalf("entry %d:\n got %+v\nwant %+v", i, *idx.Entries[i], *want.Entries[i])
			}
		}
	})
}

// benchIndex is the index file of the checkout at S3AM_BENCH_REPO, else of
// a new repository whose index has 20,000 entries, entry i named name(i).
func benchIndex(b *testing.B, name func(i int) string) []byte {
	b.Helper()
	dir := os.Getenv("S3AM_BENCH_REPO")
	if dir == "" {
		dir = initRepo(b, map[string]string{"a": "a"})
		var info strings.Builder
		blob := blobID([]byte("x")).String()
		for i := range 20000 {
			fmt.Fprintf(&info, "100644 %s\t%s\n", blob, name(i))
		}
		cmd := exec.Command("git", "update-index", "--index-info")
		cmd.Dir, cmd.Stdin = dir, strings.NewReader(info.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkDecodeIndex decodes a 20,000-entry index (as in the 20k-file
// benchmark repository) with decodeIndex and with go-git's decoder; or the
// index of the checkout at S3AM_BENCH_REPO, e.g. one made by scripts/gen-repo:
//
//	go run ./scripts/gen-repo -trees 10 -files 20000 -size 1600 /tmp/repo200k
//	S3AM_BENCH_REPO=/tmp/repo200k go test -run '^$' -bench DecodeIndex ./internal/gitrepo
func BenchmarkDecodeIndex(b *testing.B) {
	raw := benchIndex(b, func(i int) string {
		return fmt.Sprintf("lambdas/fn%02d/src/module%04d/file.py", i/2000, i%2000)
	})
	b.Run("decodeIndex", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := decodeIndex(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-git", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if err := index.NewDecoder(bytes.NewReader(raw)).Decode(&index.Index{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTrackedEntries: the binary search over a sorted index and the map an
// index out of order takes find the same entries, an unmerged path once.
func TestTrackedEntries(t *testing.T) {
	names := []string{".gitignore", "a.c", "a/b", "a/b.txt", "a/b/c", "a/b/c", "a/b/d", "a0", "b", "b", "b", "lambdas/fn1/x.py"}
	var sorted []*index.Entry
	for i, n := range names {
		sorted = append(sorted, &index.Entry{Name: n, Stage: index.Stage(i % 3)})
	}
	shuffled := slices.Clone(sorted)
	slices.Reverse(shuffled)
	want := slices.Compact(slices.Clone(names))
	for name, entries := range map[string][]*index.Entry{"sorted": sorted, "out of order": shuffled} {
		tr, err := trackedEntries(entries)
		if err != nil {
			t.Fatal(err)
		}
		if (tr.byPath == nil) != (name == "sorted") {
			t.Errorf("%s: map used = %v", name, tr.byPath != nil)
		}
		if len(tr.entries) != len(want) {
			t.Errorf("%s: %d entries, want %d", name, len(tr.entries), len(want))
		}
		for _, p := range append(want, "a", "a/b/e", "c", "lambdas/fn1/y.py", "a/b.tx") {
			prefix := p[:strings.LastIndexByte(p, '/')+1]
			i, ok := tr.dir(prefix).find(p)
			if ok != slices.Contains(want, p) || ok && tr.entries[i].Name != p {
				t.Errorf("%s: find(%q) = %d, %v", name, p, i, ok)
			}
		}
	}
	if _, err := trackedEntries([]*index.Entry{{Name: "a", Mode: filemode.Dir}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("directory entry: error %v, want ErrUnsupported", err)
	}
}

// BenchmarkTrackedFind finds every entry of an index as the walk does: its
// directory's range, then the entry within it (the index of the checkout at
// S3AM_BENCH_REPO, else a 20,000-entry one).
func BenchmarkTrackedFind(b *testing.B) {
	raw := benchIndex(b, func(i int) string {
		return fmt.Sprintf("lambdas/fn%02d/src/module%04d/f%02d.py", i/2000, i%2000/20, i%20)
	})
	idx, err := decodeIndex(raw)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := trackedEntries(idx.Entries)
	if err != nil {
		b.Fatal(err)
	}
	// The directories in an order of their own, as the walk finds them.
	byDir := map[string][]string{}
	for _, e := range tr.entries {
		p := e.Name[:strings.LastIndexByte(e.Name, '/')+1]
		byDir[p] = append(byDir[p], e.Name)
	}
	for b.Loop() {
		for p, names := range byDir {
			in := tr.dir(p)
			for _, n := range names {
				if _, ok := in.find(n); !ok {
					b.Fatalf("%s not found", n)
				}
			}
		}
	}
}
