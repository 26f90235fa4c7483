package assets

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Explaining a cache miss. Every cache entry keeps the list of what went into
// its code hash (ListName, beside its record); a small pointer per filter
// (LatestName; per component: LatestDir/<name>.json) names the latest
// entries. On a miss, check reads the pointer and the list of the nearest
// earlier build (two small GETs) and says what differs. All of it is advice:
// nothing found or not found depends on it, so a pointer or list that is
// missing, stale, damaged or foreign only makes the explanation "no earlier
// build to compare with", and whatever it names is made printable first.

// Object names of the explanation, beside the cache entries.
const (
	// ListName is the gzip file list of a cache entry's code hash.
	ListName = ".s3-asset-manager-files.gz"
	// LatestName is the pointer of the whole filter, under cache/.
	LatestName = ".s3-asset-manager-latest.json"
	// LatestDir holds a component's pointer, <name>.json, under cache/.
	LatestDir = ".s3-asset-manager-latest/"
	// LatestFormat tags the pointer's layout.
	LatestFormat = "s3-asset-manager/latest/v1"
	// CodeHashListFile is the list check leaves in the package directory on
	// a miss, for upload to store beside the cache entry it fills.
	CodeHashListFile = ".code-hash-files.gz"
	// ComponentListDir holds a component's list, <name>.gz, likewise.
	ComponentListDir = ".code-hash-files"
)

const (
	maxLatest        = 16       // entries a pointer keeps
	maxLatestSize    = 64 << 10 // bytes a reader accepts
	explainLines     = 20       // lines of a logged explanation, the last counting the rest
	explainShortSize = 160      // bytes of a component's one-line reason
)

// Latest is the pointer: the latest cache entries written for one filter
// (or component), newest first.
type Latest struct {
	Format  string        `json:"format"`
	Entries []LatestEntry `json:"entries"`
}

// LatestEntry names one cache entry.
type LatestEntry struct {
	CodeHash string    `json:"codeHash"`
	Commit   string    `json:"commit"`
	Created  time.Time `json:"created"`
	// Filter identifies the patterns (FilterID), so that of two pipelines
	// sharing a pointer each compares with its own builds first.
	Filter string `json:"filter,omitempty"`
}

// FilterID is a short digest of a filter's patterns.
func FilterID(patterns []string) string {
	h := sha256.Sum256([]byte(strings.Join(patterns, "\n")))
	return hex.EncodeToString(h[:8])
}

// latestKey is the pointer of the whole filter ("") or of a component.
func (r *Runner) latestKey(component string) string {
	if component == "" {
		return r.Config.KeyPrefix + "cache/" + LatestName
	}
	return r.Config.KeyPrefix + "cache/" + LatestDir + component + ".json"
}

// Explanation says why a cache lookup missed, against the nearest earlier
// build. With no build to compare with, CodeHash is empty and Headline says so.
type Explanation struct {
	Against  string    // commit of the build compared with
	CodeHash string    // its code hash
	Created  time.Time // when its cache entry was written
	Headline string    // "3 files differ", "the salt changed", ...
	Lines    []string  // one item a line, capped, printable
	Short    string    // the whole difference on one short line
	Why      string    // with no build to compare with: why not
}

// The headlines when nothing could be compared: nothing in the cache yet
// (a fresh bucket, or a new component), or an earlier build that could not
// be read (Why says what).
const (
	NothingCached  = "no earlier build in the cache yet"
	NoEarlierBuild = "no earlier build to compare with"
)

// Sentence is the explanation's first line: "3 files differ from the build
// of 4f2a9c1 (2 hours ago)", "no earlier build in the cache yet", or "no
// earlier build to compare with (why)".
func (e Explanation) Sentence(now time.Time) string {
	switch {
	case e.CodeHash == "" && e.Why == "":
		return e.Headline
	case e.CodeHash == "":
		return e.Headline + " (" + e.Why + ")"
	case e.Against == "":
		return fmt.Sprintf("%s from the build of code hash %s", e.Headline, short(e.CodeHash))
	case e.Created.IsZero():
		return fmt.Sprintf("%s from the build of %s", e.Headline, short(e.Against))
	}
	return fmt.Sprintf("%s from the build of %s (%s)", e.Headline, short(e.Against), ago(e.Created, now))
}

// Text is the explanation for people: the sentence (with a colon when lines
// follow), then each difference on its own indented line.
func (e Explanation) Text(now time.Time) []string {
	if len(e.Lines) == 0 {
		return []string{e.Sentence(now)}
	}
	out := []string{e.Sentence(now) + ":"}
	for _, l := range e.Lines {
		out = append(out, "  "+l)
	}
	return out
}

// ShortSentence is the explanation on one short line, for a component's
// reason: "2 files differ from 4f2a9c1: modified a.js; added b.js".
func (e Explanation) ShortSentence() string {
	if e.CodeHash == "" {
		return e.Headline
	}
	against := short(e.Against)
	if e.Against == "" {
		against = "code hash " + short(e.CodeHash)
	}
	if e.Short == "" {
		return e.Headline + " from " + against
	}
	return e.Headline + " from " + against + ": " + e.Short
}

// Log writes the explanation under "cache miss: ".
func (e Explanation) Log(logf func(string, ...any), now time.Time) {
	for i, l := range e.Text(now) {
		if i == 0 {
			l = "cache miss: " + l
		}
		logf("%s", l)
	}
}

func short(commit string) string { return commit[:min(len(commit), 7)] }

// ago is a rough age for people: "5 minutes ago", "2 hours ago", "3 days ago".
func ago(t, now time.Time) string {
	d := now.Sub(t)
	unit := func(n int, one string) string { return words.Count(n, one, one+"s") + " ago" }
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return unit(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return unit(int(d/time.Hour), "hour")
	default:
		return unit(int(d/(24*time.Hour)), "day")
	}
}

// explainMiss compares the list of this code hash with the nearest earlier
// build of the same filter (or component). It makes at most two requests,
// and never fails: whatever goes wrong is "no earlier build to compare with".
// With no pointer yet, there is simply nothing in the cache to compare with.
//
// ptrs, when set (a check with components), is the listing of the
// components' pointers: a component that has none is told so without a
// request of its own. pre, when set, is the pointer's read, started beside
// the cache lookup (the whole commit's); its answer stands in for a read.
func (r *Runner) explainMiss(ctx context.Context, component string, cur *codehash.List, ptrs *pointerIndex, pre *pendingRead) Explanation {
	none := func(why string) Explanation {
		return Explanation{Headline: NoEarlierBuild, Why: why}
	}
	if cur == nil {
		return none("this check has no file list")
	}
	key := r.latestKey(component)
	has, known, listing := r.hasPointer(ctx, ptrs, key)
	if listing != nil {
		defer func() { <-listing }() // nothing of the check left running
	}
	if known && !has {
		return Explanation{Headline: NothingCached}
	}
	var data []byte
	var err error
	if pre != nil {
		data, err = pre.wait()
	} else {
		data, err = r.store().ReadSmall(ctx, key, maxLatestSize)
	}
	if errors.Is(err, s3store.ErrNotFound) {
		return Explanation{Headline: NothingCached}
	}
	if err != nil {
		return none("could not read " + r.Store.URL(key))
	}
	latest, ok := decodeLatest(data)
	if !ok {
		return none(r.Store.URL(key) + " is not a valid pointer")
	}
	e, ok := nearest(latest.Entries, cur)
	if !ok {
		return none("no other build in " + r.Store.URL(key))
	}
	old, err := r.readList(ctx, e.CodeHash)
	if errors.Is(err, codehash.ErrBadList) {
		return none("the file list of " + short(e.Commit) + " is damaged or not its own")
	}
	if err != nil {
		return none("the file list of " + short(e.Commit) + " could not be read")
	}
	return explain(e.Commit, e.CodeHash, e.Created, old, cur, explainLines)
}

// pointerIndex lists the components' pointers (LatestDir) once, from the
// first component of a check that misses: the others' explanations then
// read only the pointers that exist. A new commit of 100 new components
// makes one LIST instead of 100 GETs. The first miss reads its own pointer
// while the listing runs, not after it: where every component has a
// pointer and one misses, its explanation takes the two GETs it took
// without the index (the listing is one request more, beside them).
type pointerIndex struct {
	once sync.Once
	done chan struct{} // closed when listed (or failed)
	keys map[string]bool
	ok   bool // listed; else each pointer is read as if there were no index
}

// hasPointer says whether the pointer at key exists (known false: no index,
// or it could not be listed, or this caller started the listing and reads
// its pointer beside it). listing, for that caller, is closed when the
// listing ends.
func (r *Runner) hasPointer(ctx context.Context, x *pointerIndex, key string) (has, known bool, listing <-chan struct{}) {
	if x == nil {
		return false, false, nil
	}
	first := false
	x.once.Do(func() {
		first, x.done = true, make(chan struct{})
		go func() {
			defer close(x.done)
			objs, err := r.store().List(ctx, r.Config.KeyPrefix+"cache/"+LatestDir)
			if err != nil {
				return // advice only: each pointer is read, and says what is wrong
			}
			x.keys, x.ok = make(map[string]bool, len(objs)), true
			for _, o := range objs {
				x.keys[o.Key] = true
			}
		}()
	})
	if first {
		return false, false, x.done
	}
	select {
	case <-x.done:
		return x.keys[key], x.ok, nil
	case <-ctx.Done():
		return false, false, nil
	}
}

func explain(commit, codeHash string, created time.Time, old, cur *codehash.List, lines int) Explanation {
	d := codehash.Compare(old, cur)
	return Explanation{
		Against: commit, CodeHash: codeHash, Created: created,
		Headline: d.Headline(), Lines: d.Lines(lines), Short: d.Short(explainShortSize),
	}
}

// readList reads the file list of a cache entry; a damaged one, or one of
// another code hash, wraps codehash.ErrBadList.
func (r *Runner) readList(ctx context.Context, codeHash string) (*codehash.List, error) {
	key := r.prefix(Cache(codeHash)) + ListName
	data, err := r.store().ReadSmall(ctx, key, codehash.MaxListSize)
	if err != nil {
		return nil, err
	}
	l, err := codehash.DecodeList(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Store.URL(key), err)
	}
	if l.CodeHash != codeHash {
		return nil, fmt.Errorf("%s: %w: it names code hash %s", r.Store.URL(key), codehash.ErrBadList, words.Printable(short(l.CodeHash)))
	}
	return l, nil
}

// ErrNoStoredBuild: hash --diff was given a build that is not in the bucket,
// or has no file list to compare with.
var ErrNoStoredBuild = errors.New("no stored build to compare with")

// DiffStored compares cur with a stored build named by its commit (its
// artifacts record gives the code hash) or by its code hash, for
// `hash --diff`: every difference, uncapped. Unlike the explanation of a
// miss, what cannot be read is an error.
//
// component names a component's build (its record under the commit's); ""
// the whole filter's.
func (r *Runner) DiffStored(ctx context.Context, commit, codeHash, component string, cur *codehash.List) (Explanation, error) {
	var created time.Time
	if codeHash == "" {
		key := r.prefix(ComponentSet(commit, component)) + manifest.Name
		data, err := r.store().ReadSmall(ctx, key, manifest.MaxSize)
		if errors.Is(err, s3store.ErrNotFound) {
			return Explanation{}, failAs(KindNotFound, fmt.Errorf("%w: no build of commit %s at %s", ErrNoStoredBuild, commit, r.Store.URL(key)))
		}
		if err != nil {
			return Explanation{}, err
		}
		// Read for advice only: neither signature nor trust matters here.
		rec, err := manifest.Decode(data, nil)
		if err != nil {
			return Explanation{}, failAs(KindNotFound, fmt.Errorf("%w: %s: %w", ErrNoStoredBuild, r.Store.URL(key), err))
		}
		if rec.CodeHash == "" {
			return Explanation{}, failAs(KindNotFound, fmt.Errorf("%w: the build of %s was stored without a code hash", ErrNoStoredBuild, commit))
		}
		codeHash, created = rec.CodeHash, rec.Created
	} else if data, err := r.store().ReadSmall(ctx, r.prefix(Cache(codeHash))+manifest.Name, manifest.MaxSize); err == nil {
		if rec, err := manifest.Decode(data, nil); err == nil {
			commit, created = rec.Commit, rec.Created
		}
	}
	old, err := r.readList(ctx, codeHash)
	if errors.Is(err, s3store.ErrNotFound) || errors.Is(err, codehash.ErrBadList) {
		return Explanation{}, failAs(KindNotFound, fmt.Errorf("%w: %w", ErrNoStoredBuild, err))
	}
	if err != nil {
		return Explanation{}, err
	}
	e := explain(commit, codeHash, created, old, cur, 0)
	return e, nil
}

// nearest picks the build to compare with: the newest entry of the same
// patterns, else the newest of any (a changed filter is then named as such);
// never this code hash itself (its entry is what was just missed).
func nearest(entries []LatestEntry, cur *codehash.List) (LatestEntry, bool) {
	filter := FilterID(cur.Patterns)
	var best LatestEntry
	found := false
	for _, e := range entries {
		if e.CodeHash == cur.CodeHash {
			continue
		}
		same, bestSame := e.Filter == filter, best.Filter == filter
		if !found || same && !bestSame || same == bestSame && e.Created.After(best.Created) {
			best, found = e, true
		}
	}
	return best, found
}

// decodeLatest reads a pointer, keeping only well-formed entries: a foreign
// or damaged one is not an error, there is simply nothing to compare with.
func decodeLatest(data []byte) (Latest, bool) {
	var l Latest
	if err := json.Unmarshal(data, &l); err != nil || l.Format != LatestFormat {
		return Latest{}, false
	}
	valid := l.Entries[:0]
	for _, e := range l.Entries {
		if manifest.ValidCodeHash(e.CodeHash) && manifest.ValidCommit(e.Commit) && !e.Created.IsZero() {
			valid = append(valid, e)
		}
	}
	l.Entries = valid
	return l, true
}

// encodedList is a file list being encoded in the background (see
// encodeList); nil when there is none to keep.
type encodedList chan encoded

type encoded struct {
	data []byte
	err  error
}

// encodeList starts encoding the file list of a code hash about to be
// looked up in the cache, so that it is written while the cache is looked
// up and a miss explained, not after them. A hit drops it unread. Nothing to
// encode when the cache is read-only: no entry will be filled. The list is
// kept uncompressed (codehash.EncodeStored: 200,000 files, 12.8-13.6 ms of CPU
// against the 65-75 of Huffman coding, which on a loopback store or two
// busy cores was on the critical path); storeList compresses it for the
// bucket. The whole commit's list comes made already (the checkout's
// CodeHash encodes it beside the hash's digest, codehash.ComputeList).
func (r *Runner) encodeList(list *codehash.List) encodedList {
	if list == nil || r.Config.CacheReadOnly {
		return nil
	}
	c := make(encodedList, 1)
	go func() {
		data, err := list.EncodeStored()
		c <- encoded{data, err}
	}()
	return c
}

// keepList writes the file list of a missed code hash into the package
// directory, for upload to store beside the cache entry it fills.
func (r *Runner) keepList(list encodedList, component string) {
	if list == nil {
		return
	}
	e := <-list
	err := e.err
	if err == nil {
		err = r.workspace().keepList(component, e.data)
	}
	if err != nil {
		r.logf("warning: could not keep the file list for the cache entry (%v); its misses will not be explained", err)
	}
}

// storeList uploads the package directory's file list beside a cache entry
// being filled, before its record. It returns the list's header (for the
// pointer), or nil when there is none for this code hash. Advice only: a
// failure is logged, never fatal.
//
// Check keeps the list uncompressed (encodeList); it goes to the bucket
// Huffman-coded, as every later miss reads it there (200,000 files: 10 MiB
// against 17).
func (r *Runner) storeList(ctx context.Context, prefix, codeHash, component string) *codehash.List {
	path := r.workspace().listPath(component)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		r.logf("warning: %v: the cache entry gets no file list", err)
		return nil
	}
	defer f.Close()
	head, err := codehash.ReadListHeader(f)
	if err != nil || head.CodeHash != codeHash {
		r.logf("warning: %s is not the file list of code hash %s: the cache entry gets none", path, codeHash)
		return nil
	}
	send, err := compressList(f, filepath.Dir(path))
	if err != nil {
		// Not the list as kept instead: uncompressed, it passes what
		// readers take (codehash.MaxListSize) near 380,000 files.
		r.logf("warning: %s: %v: the cache entry gets none", path, err)
		return nil
	}
	defer os.Remove(send)
	_, err = r.store().UploadFile(ctx, s3store.UploadRequest{
		Key: prefix + ListName, Path: send, ContentType: "application/gzip",
		Metadata: func([]byte) map[string]string { return nil },
	})
	if err != nil {
		r.logf("warning: could not store the file list (%v): later misses will not be explained against this build", err)
		return nil
	}
	return head
}

// compressList writes the list read from f, from its start, Huffman-coded
// (codehash.Compress) into a temporary file, and returns that file's path.
// The file is made in TMPDIR, so that one left by a killed upload is not in
// the package directory (a deploy of its hidden files would ship it); only
// if that fails (TMPDIR missing or full) in dir, the kept list's (known
// writable), hidden, so upload never sends it, and removed by the next
// check or upload (listLeftovers).
func compressList(f *os.File, dir string) (string, error) {
	name, err := compressListIn(f, "")
	if err != nil {
		name, err = compressListIn(f, dir)
	}
	if err != nil {
		return "", fmt.Errorf("compress the file list: %w", err)
	}
	return name, nil
}

// listLeftover is the name of compressList's file in the package directory.
const listLeftover = ".s3-asset-manager-files-*.gz"

func compressListIn(f *os.File, dir string) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, listLeftover)
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(tmp, 256<<10)
	err = codehash.Compress(bw, f)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// noteLatest adds a cache entry to its filter's (or component's) pointer.
// Read, add, write: of two uploads at once, one entry may be lost, and the
// next miss compares with an older build. Advice only: a failure is logged.
func (r *Runner) noteLatest(ctx context.Context, component string, e LatestEntry) {
	key := r.latestKey(component)
	// One that cannot be read (missing, damaged, too big) starts afresh:
	// it is only advice, and the next write should repair it.
	var l Latest
	if data, err := r.store().ReadSmall(ctx, key, maxLatestSize); err == nil {
		l, _ = decodeLatest(data)
	}
	entries := []LatestEntry{e}
	for _, old := range l.Entries {
		if old.CodeHash != e.CodeHash {
			entries = append(entries, old)
		}
	}
	slices.SortStableFunc(entries, func(a, b LatestEntry) int { return b.Created.Compare(a.Created) })
	entries = entries[:min(len(entries), maxLatest)]
	body, err := json.Marshal(Latest{Format: LatestFormat, Entries: entries})
	if err == nil {
		err = r.store().WriteRecord(ctx, key, body, false)
	}
	if err != nil {
		r.logf("warning: could not update %s (%v)", r.Store.URL(key), err)
		return
	}
	r.logf("%s now names this build first", r.Store.URL(key))
}
