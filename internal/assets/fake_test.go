package assets

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/jonboulle/clockwork"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/gitrepo"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

// fakeStore is an in-memory bucket with S3's semantics where the
// orchestrator's decisions depend on them: conditional record writes,
// conditional copies, ETags that change with the content, listings of a
// prefix at any depth.
type fakeStore struct {
	mu   sync.Mutex
	objs map[string]fakeObject
	// beforeRecord, when set, runs once before the first exclusive record
	// write: another writer getting there first.
	beforeRecord func(f *fakeStore, key string)
	// beforeCopy, when set, runs before each copy (outside the lock).
	beforeCopy func(f *fakeStore, r s3store.CopyRequest)
	// writes counts record writes that were stored, by key.
	writes map[string]int
	// reads lists the keys ReadSmall was asked for; readErr, when set, is
	// every ReadSmall's answer (a store that refuses or fails).
	reads   []string
	readErr error
	// failReadsFrom, when set, makes every ReadSmall of a key under it
	// fail as access denied.
	failReadsFrom string
	// listErr, when set, is every List's answer.
	listErr error
	// lists lists the prefixes List was asked for.
	lists []string
	// onRead, when set, runs at each ReadSmall; beforeList before each
	// List (both outside the lock).
	onRead     func(key string)
	beforeList func(prefix string)
	// beforeDownload, when set, runs once before the first Download: the
	// bucket changing while a download runs.
	beforeDownload func(f *fakeStore, key string)
	// onUpload, when set, runs at each UploadFile (outside the lock).
	onUpload func(req s3store.UploadRequest)
	// onWriteRecord, when set, runs at each WriteRecord, before it is
	// stored (outside the lock).
	onWriteRecord func(key string)
	// clock is the store's: a cancelled run's grace (AfterCancel) runs on
	// it, so it ends only when a test moves it.
	clock *clockwork.FakeClock
}

type fakeObject struct {
	body []byte
	etag string // quoted, as S3 returns it
	meta map[string]string
	ct   string
}

func newFake() *fakeStore {
	return &fakeStore{objs: map[string]fakeObject{}, writes: map[string]int{}, clock: clockwork.NewFakeClock()}
}

var _ Store = (*fakeStore)(nil)

func etagOf(b []byte) string { s := md5.Sum(b); return `"` + hex.EncodeToString(s[:]) + `"` }

func (f *fakeStore) put(key string, body []byte, meta map[string]string, ct string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := fakeObject{body: bytes.Clone(body), etag: etagOf(body), meta: meta, ct: ct}
	f.objs[key] = o
	return o.etag
}

func (f *fakeStore) get(key string) (fakeObject, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objs[key]
	return o, ok
}

func (f *fakeStore) del(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objs, key)
}

func (f *fakeStore) AfterCancel(ctx context.Context) (context.Context, context.CancelFunc) {
	return s3store.AfterCancel(ctx, f.clock)
}

func (f *fakeStore) URL(key string) string { return "s3://fake/" + key }

func (f *fakeStore) ReadSmall(_ context.Context, key string, max int64) ([]byte, error) {
	f.mu.Lock()
	f.reads = append(f.reads, key)
	err := f.readErr
	if f.failReadsFrom != "" && strings.HasPrefix(key, f.failReadsFrom) {
		err = s3store.ErrAccessDenied
	}
	onRead := f.onRead
	f.mu.Unlock()
	if onRead != nil {
		onRead(key)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", f.URL(key), err)
	}
	o, ok := f.get(key)
	if !ok {
		return nil, fmt.Errorf("get %s: %w", f.URL(key), s3store.ErrNotFound)
	}
	if int64(len(o.body)) > max {
		return nil, fmt.Errorf("get %s: %w", f.URL(key), s3store.ErrTooLarge)
	}
	return bytes.Clone(o.body), nil
}

func (f *fakeStore) UploadFile(ctx context.Context, req s3store.UploadRequest) (s3store.Uploaded, error) {
	if f.onUpload != nil {
		f.onUpload(req)
	}
	if err := ctx.Err(); err != nil { // cancelled (onUpload may cancel it)
		return s3store.Uploaded{}, err
	}
	b, err := os.ReadFile(req.Path)
	if err != nil {
		return s3store.Uploaded{}, err
	}
	sum := sha256.Sum256(b)
	etag := f.put(req.Key, b, req.Metadata(sum[:]), req.ContentType)
	return s3store.Uploaded{Size: int64(len(b)), SHA256: sum[:], ETag: etag, Check: "SHA-256"}, nil
}

func (f *fakeStore) WriteRecord(ctx context.Context, key string, body []byte, exclusive bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.onWriteRecord != nil {
		f.onWriteRecord(key)
	}
	f.mu.Lock()
	hook := f.beforeRecord
	if exclusive {
		f.beforeRecord = nil
	}
	f.mu.Unlock()
	if exclusive && hook != nil {
		hook(f, key)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.objs[key]; ok && exclusive {
		return fmt.Errorf("put %s: %w", f.URL(key), s3store.ErrExists)
	}
	f.objs[key] = fakeObject{body: bytes.Clone(body), etag: etagOf(body), ct: "application/json"}
	f.writes[key]++
	return nil
}

func (f *fakeStore) Copy(ctx context.Context, r s3store.CopyRequest) (string, error) {
	if f.beforeCopy != nil {
		f.beforeCopy(f, r)
	}
	if err := ctx.Err(); err != nil { // cancelled (beforeCopy may cancel it)
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.objs[r.Src]
	if !ok || (r.SrcETag != "" && src.etag != r.SrcETag) {
		return "", fmt.Errorf("copy %s: %w", f.URL(r.Src), s3store.ErrSourceChanged)
	}
	dst := src
	if r.Metadata != nil {
		dst.meta, dst.ct = r.Metadata, r.ContentType
	}
	f.objs[r.Dst] = dst
	return dst.etag, nil
}

// Download writes an object to req.Path, as the real store does once every
// check has passed, and refuses what the real one refuses: an object that is
// gone (ErrNotFound), one of another ETag or size (ErrSourceChanged), bytes
// that do not match the SHA-256 (ErrDamaged).
func (f *fakeStore) Download(_ context.Context, req s3store.DownloadRequest) (s3store.Downloaded, error) {
	f.mu.Lock()
	hook := f.beforeDownload
	f.beforeDownload = nil
	f.mu.Unlock()
	if hook != nil {
		hook(f, req.Key)
	}
	o, ok := f.get(req.Key)
	sum := sha256.Sum256(o.body)
	switch {
	case !ok:
		return s3store.Downloaded{}, fmt.Errorf("get %s: %w", f.URL(req.Key), s3store.ErrNotFound)
	case req.ETag != "" && o.etag != req.ETag, int64(len(o.body)) != req.Size:
		return s3store.Downloaded{}, fmt.Errorf("get %s: %w", f.URL(req.Key), s3store.ErrSourceChanged)
	case !bytes.Equal(sum[:], req.SHA256):
		return s3store.Downloaded{}, fmt.Errorf("%s: %w", f.URL(req.Key), s3store.ErrDamaged)
	}
	if err := os.WriteFile(req.Path, o.body, req.Mode); err != nil {
		return s3store.Downloaded{}, err
	}
	return s3store.Downloaded{Size: req.Size}, nil
}

func (f *fakeStore) List(_ context.Context, prefix string) ([]s3store.Object, error) {
	f.mu.Lock()
	hook := f.beforeList
	f.mu.Unlock()
	if hook != nil {
		hook(prefix)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, prefix)
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []s3store.Object
	for k, o := range f.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, s3store.Object{Key: k, Size: int64(len(o.body)), ETag: s3store.NormalizeETag(o.etag)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// seed stores a set: its files, then a record describing them (edited by
// edit, when given), signed with key when key is set.
func (f *fakeStore) seed(prefix string, rec manifest.Record, files map[string]string, key []byte, edit func(*manifest.Record)) {
	rec.Format = manifest.Format
	rec.Created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := []byte(files[n])
		sum := sha256.Sum256(b)
		etag := f.put(prefix+n, b, nil, "application/zip")
		rec.Files = append(rec.Files, manifest.File{Name: n, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), ETag: etag})
	}
	if edit != nil {
		edit(&rec)
	}
	body, err := manifest.Encode(rec, key)
	if err != nil {
		panic(err)
	}
	f.put(prefix+manifest.Name, body, nil, "application/json")
}

// record decodes the record under prefix, nil if there is none or it does not decode.
func (f *fakeStore) record(prefix string, key []byte) *manifest.Record {
	o, ok := f.get(prefix + manifest.Name)
	if !ok {
		return nil
	}
	rec, err := manifest.Decode(o.body, key)
	if err != nil {
		return nil
	}
	return rec
}

// fakeRepo is a checkout at a fixed commit with a fixed code hash.
type fakeRepo struct{ commit, codeHash string }

func (r fakeRepo) Head() (string, error) { return r.commit, nil }
func (r fakeRepo) CodeHash(context.Context) (*codehash.List, error) {
	return fileList(r.codeHash, []string{"**"}, "a", "b", "c"), nil
}

// fileList is a list of files whose content is their own path.
func fileList(codeHash string, pats []string, paths ...string) *codehash.List {
	l := &codehash.List{CodeHash: codeHash, SaltDigest: codehash.SaltDigest(""), Patterns: pats}
	for _, p := range paths {
		l.Files = append(l.Files, gitrepo.File{Path: p, Mode: filemode.Regular, ID: plumbing.ComputeHash(plumbing.BlobObject, []byte(p))})
	}
	return l
}

// Components: this checkout declares none (see fakeMonoRepo).
func (r fakeRepo) Components(context.Context) ([]ComponentCode, error) {
	return nil, fmt.Errorf("no components in this checkout")
}

// ComponentNames: none either.
func (r fakeRepo) ComponentNames(context.Context) ([]string, error) { return nil, nil }

// keys lists the bucket's keys, sorted.
func (f *fakeStore) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.objs))
	for k := range f.objs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
