package assets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/owner"
	"github.com/nsmithuk/s3-asset-manager/internal/pool"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Marker files in the package directory, as the original tool wrote them.
const (
	FoundFile    = ".found"
	CommitFile   = ".commit-hash"
	CodeHashFile = ".code-hash"
)

// Files in the package directory for components (PACKAGE_COMPONENTS). A
// component's own files go to the sub-directory named after it, where check
// marks it complete with FoundFile.
const (
	// ComponentsFile is every component's state as check left it (JSON):
	// what upload reads to know the components and their code hashes.
	ComponentsFile = ".components.json"
	// ToBuildFile names the components to build, one a line, for a shell loop.
	ToBuildFile = ".components-to-build"
)

// markerWriters write the components' markers, each a system call or two
// in its own directory: a check of 100 components waited 2.8 ms for them
// one at a time, 2.4 ms four at a time (medians of 60).
const markerWriters = 4

// componentsState is the content of ComponentsFile.
type componentsState struct {
	Commit     string           `json:"commit"`
	Components []ComponentState `json:"components"`
}

// workspace is the package directory: the one owner of every marker's name,
// format, validation, write and removal, of the failure rule (a failed run
// leaves no marker it wrote: rollback), and of ownership (everything
// created under a directory of another user is handed to that user, so that
// the steps after a container running as root, as the runner's user, can
// write, chmod and delete it). Every error it returns is the package
// directory's.
type workspace struct {
	dir  string
	logf func(string, ...any)

	mkMu     sync.Mutex              // held while a directory is looked for, made and handed over
	handOver func(path string) error // nil: owner.LikeParent (Runner.handOver)

	mu      sync.Mutex
	written []string // markers this run wrote, in order
	made    []string // directories this run made, in order
	// spares are the markers of an earlier run that prepare moved aside
	// (marker path -> spare path), for write to reuse (see setAside); the
	// ones left unused are removed when the check ends (dropSpares).
	spares map[string]spare
}

// spare is an earlier run's marker moved aside.
type spare struct {
	path  string
	empty bool
	fi    os.FileInfo // as setAside found it (Lstat)
	dir   owner.Dir   // its directory's owner
}

// spareSuffix names an earlier run's marker moved aside by check (for
// instance <name>/.found.stale), which check reuses or removes before it
// exits. Hidden, so never uploaded.
const spareSuffix = ".stale"

// workspace is the package directory of this run (made on first use, by a
// command before it goes parallel; a command starts a fresh one).
func (r *Runner) workspace() *workspace {
	if r.work == nil || r.work.dir != r.Config.PackageDir {
		r.work = newWorkspace(r.Config.PackageDir, r.logf)
		r.work.handOver = r.handOver
	}
	return r.work
}

func newWorkspace(dir string, logf func(string, ...any)) *workspace {
	return &workspace{dir: dir, logf: logf}
}

// path is a file of the package directory.
func (w *workspace) path(elem ...string) string {
	return filepath.Join(append([]string{w.dir}, elem...)...)
}

// mkdir creates dir and the parents it needs, each handed to the owner of
// the directory it was made in (owner.MkdirAll), remembered for rollback.
// Workers writing files of one directory call it at once: none may go on
// before the directory is handed over (the owner of a file is looked up
// from its directory), so it runs under one lock.
func (w *workspace) mkdir(dir string) error {
	w.mkMu.Lock()
	defer w.mkMu.Unlock()
	err := owner.MkdirAll(dir, w.handOver, func(d string) {
		w.mu.Lock()
		w.made = append(w.made, d)
		w.mu.Unlock()
	})
	if err != nil {
		return fail(KindPackage, err)
	}
	return nil
}

// own hands path, just created, to the owner of the directory holding it
// when root created it under another user's directory.
func (w *workspace) own(path string) error {
	hand := owner.LikeParent
	if w.handOver != nil {
		hand = w.handOver
	}
	if err := hand(path); err != nil {
		return fail(KindPackage, fmt.Errorf("hand %s to the owner of its directory: %w", words.Printable(path), err))
	}
	return nil
}

// write writes a marker (its parent directory made if needed), remembered
// for rollback.
func (w *workspace) write(path string, data []byte) error {
	if w.reuse(path, data) {
		return nil
	}
	if err := w.mkdir(filepath.Dir(path)); err != nil {
		return err
	}
	// Remembered before it is written: a write cut short (a full disk)
	// leaves a part of a marker that the rollback must remove too.
	w.mu.Lock()
	w.written = append(w.written, path)
	w.mu.Unlock()
	if err := create(path, data); err != nil {
		return fail(KindPackage, fmt.Errorf("write %s: %w", path, err))
	}
	return nil
}

// create writes a new file at path, handed to the owner of its directory.
// Never through a link: whatever is at the name (put there since prepare
// cleared it) is removed, once; one put there again is refused (O_EXCL).
func create(path string, data []byte) error {
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL | noFollow
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		if _, err = removeIfExists(path); err == nil {
			f, err = os.OpenFile(path, flags, 0o644)
		}
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		if err = owner.Of(filepath.Dir(path)).Hand(f); err != nil {
			err = fmt.Errorf("hand it to the owner of its directory: %w", err)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// errNotSpare: the spare's name no longer holds the file setAside found.
var errNotSpare = errors.New("not the file set aside")

// reuse writes a marker into the earlier run's file of the same name that
// prepare moved aside, hands it to the owner of its directory, then puts it
// in place (so the marker appears with its new content, as a file written
// afresh would). It reports false when there is no such file, or it could
// not be written (its name is removed then, and the marker is written
// afresh): the name is opened without following a link, and the file opened
// must be the one setAside found, with still no other name.
func (w *workspace) reuse(path string, data []byte) bool {
	w.mu.Lock()
	spare, ok := w.spares[path]
	delete(w.spares, path)
	w.mu.Unlock()
	if !ok {
		return false
	}
	err := rewrite(spare.path, spare.fi, spare.dir, data, len(data) == 0 && spare.empty)
	if err == nil {
		err = rename(spare.path, path)
	}
	if err != nil {
		w.logf("could not rewrite %s (%v): writing %s afresh", spare.path, err, path)
		os.Remove(spare.path)
		return false
	}
	w.mu.Lock()
	w.written = append(w.written, path)
	w.mu.Unlock()
	return true
}

// setAside moves an earlier run's marker out of its name, keeping its file
// for this run's write of the same marker, if it is one to write over
// (owner.Dir.Reusable: a regular file with no other name, of root or the
// directory's owner when root runs); anything else is removed (its name:
// a link's target is never touched), as it always was. Creating a file is
// what a found check spends most of its time on, with a marker per
// component: ext4 skips every inode freed in the last minutes when it
// allocates one (scanning its inode table for each), and a check that
// removed the last run's markers and created them again made exactly such
// inodes, each run. Renaming keeps the rule that no earlier marker survives
// a check, even one killed before it ends: the file left then is a spare,
// never a marker. It reports what it did, for the log ("" nothing).
func (w *workspace) setAside(path string) (did string, err error) {
	sp := spare{path: path + spareSuffix}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// A spare left by a check that was killed is reused all the same.
		fi, err := os.Lstat(sp.path)
		if err != nil {
			return "", nil
		}
		if sp.dir = owner.Of(filepath.Dir(path)); !sp.dir.Reusable(fi) {
			_, err := removeIfExists(sp.path)
			return "", err
		}
		sp.empty, sp.fi = fi.Size() == 0, fi
		w.spares[path] = sp
		return "", nil
	case err != nil:
		return "", err
	}
	if sp.dir = owner.Of(filepath.Dir(path)); !sp.dir.Reusable(fi) {
		if removed, err := removeIfExists(path); err != nil || !removed {
			return "", err
		}
		return "removed", nil
	}
	if err := rename(path, sp.path); err != nil {
		return "", err
	}
	sp.empty, sp.fi = fi.Size() == 0, fi
	w.spares[path] = sp
	return "moved aside, to be rewritten or removed", nil
}

// dropSpares removes the earlier run's markers that this check did not
// reuse.
func (w *workspace) dropSpares() {
	w.mu.Lock()
	spares := w.spares
	w.spares = nil
	w.mu.Unlock()
	for _, sp := range spares {
		if _, err := removeIfExists(sp.path); err != nil {
			w.logf("could not remove %s: %v", sp.path, err)
		}
	}
}

// rollback removes every marker this run wrote, and the directories it
// made that are empty again: a failed check must not leave a .commit-hash
// for an upload to store a build under, nor a .found to skip it.
func (w *workspace) rollback() {
	w.mu.Lock()
	written, made := w.written, w.made
	w.written, w.made = nil, nil
	w.mu.Unlock()
	for _, p := range slices.Backward(written) {
		if removed, err := removeIfExists(p); err != nil {
			w.logf("could not remove %s: %v", p, err)
		} else if removed {
			w.logf("removed %s: this run failed", p)
		}
	}
	for _, d := range slices.Backward(made) {
		if d != filepath.Clean(w.dir) {
			os.Remove(d) // only if empty: the build's files stay
		}
	}
}

// prepare makes the package directory if needed and removes the markers of
// an earlier run in it (moves them aside: setAside), which must not leak
// into this one even if it fails: a stale .found skips the build, a stale
// .commit-hash makes an upload store this build under another commit, a
// stale .code-hash fills the wrong cache, a stale state of components
// steers an upload.
func (w *workspace) prepare() error {
	if err := w.mkdir(w.dir); err != nil {
		return fmt.Errorf("create package directory: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.spares = map[string]spare{}
	for _, name := range []string{FoundFile, CommitFile, CodeHashFile, CodeHashListFile, ComponentsFile, ToBuildFile} {
		did, err := w.setAside(w.path(name))
		if err != nil {
			return fail(KindPackage, fmt.Errorf("move aside or remove the earlier run's %s: %w", name, err))
		}
		if did != "" {
			w.logf("%s left by an earlier run: %s", w.path(name), did)
		}
	}
	if err := os.RemoveAll(w.path(ComponentListDir)); err != nil {
		return fail(KindPackage, fmt.Errorf("remove the earlier run's %s: %w", ComponentListDir, err))
	}
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return fail(KindPackage, err)
	}
	for _, e := range ents {
		if e.IsDir() { // a link to one: setAsideLinked, for a component's name
			if _, err := w.setAside(w.path(e.Name(), FoundFile)); err != nil {
				return fail(KindPackage, fmt.Errorf("move aside or remove the earlier run's %s: %w", words.Printable(e.Name()+"/"+FoundFile), err))
			}
		} else if isListLeftover(e.Name()) {
			if err := w.removeLeftover(e.Name()); err != nil {
				return fail(KindPackage, err)
			}
		}
	}
	return nil
}

// setAsideLinked is prepare for the entries of the package directory named
// after a component (names) that link to a directory (a build may link a
// component's directory to where it builds): check writes <name>/.found
// through the link, so an earlier run's is moved aside. Only those: a link
// named otherwise (packages/shared -> ../shared) leads to a directory whose
// .found is not an earlier check's. Called once the names are known, before
// any component's marker is written.
func (w *workspace) setAsideLinked(names []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, name := range names {
		path := w.path(name)
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			continue // none, or not a link: a directory's is prepare's
		}
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := w.setAside(w.path(name, FoundFile)); err != nil {
			return fail(KindPackage, fmt.Errorf("move aside or remove the earlier run's %s: %w", words.Printable(name+"/"+FoundFile), err))
		}
	}
	return nil
}

// read returns a marker's trimmed content; "" when there is none.
func (w *workspace) read(name string) (string, error) {
	b, err := os.ReadFile(w.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fail(KindPackage, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (w *workspace) writeCommit(commit string) error {
	return w.write(w.path(CommitFile), []byte(commit))
}

// commit is .commit-hash, validated before it goes anywhere (a log, a key,
// a record, a step output); "" when there is none.
func (w *workspace) commit() (string, error) {
	return w.readValid(CommitFile, manifest.ParseCommit, "not a 40 or 64 hex commit id")
}

func (w *workspace) writeCodeHash(hash string) error {
	return w.write(w.path(CodeHashFile), []byte(hash))
}

// codeHash is .code-hash, validated; "" when there is none.
func (w *workspace) codeHash() (string, error) {
	return w.readValid(CodeHashFile, func(v string) (string, bool) { return v, manifest.ValidCodeHash(v) }, "not a code hash (run check again)")
}

// readValid is the marker name, read and parsed; one that parse refuses is
// a package error saying what it holds and, in not, what it is not.
func (w *workspace) readValid(name string, parse func(string) (string, bool), not string) (string, error) {
	v, err := w.read(name)
	if err != nil || v == "" {
		return v, err
	}
	p, ok := parse(v)
	if !ok {
		return v, fail(KindPackage, fmt.Errorf("%s holds %s, %s", w.path(name), words.Quote(words.Truncate(v, 80)), not))
	}
	return p, nil
}

// writeFound marks the build as not needed: the whole set, or component's.
func (w *workspace) writeFound(component string) error {
	err := w.write(w.path(component, FoundFile), nil)
	if err != nil && component != "" {
		// A file at the component's path: say so, not "mkdir: file exists".
		if derr := w.notComponentDir(component); derr != nil {
			return fail(KindPackage, fmt.Errorf("component %s: %w (the component's %s goes in it): remove it, or move it out of the package directory",
				component, derr, FoundFile))
		}
	}
	return err
}

// notComponentDir says, when the component's path in the package directory
// holds something other than a directory (a whole set's artifact of the same
// name, left in a reused package directory), that it is not one; nil for a
// directory, or nothing there. The one place this is decided, for check
// (its .found goes in it) and upload (its files come from it).
func (w *workspace) notComponentDir(component string) error {
	dir := w.path(component)
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// found reports whether check marked the set (or component) complete.
func (w *workspace) found(component string) (bool, error) {
	_, err := os.Stat(w.path(component, FoundFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fail(KindPackage, err)
	}
	return true, nil
}

// writeComponents leaves what the build and upload need of components:
// <name>/.found for each complete one, the names to build (ToBuildFile),
// and every component's state (ComponentsFile). It returns the names to build.
func (w *workspace) writeComponents(commit string, states []ComponentState) (build []string, err error) {
	var list strings.Builder
	var found []string
	for _, s := range states {
		switch {
		case s.Build:
			build = append(build, s.Name)
			list.WriteString(s.Name + "\n")
		case s.Found:
			found = append(found, s.Name)
		}
	}
	err = pool.Run(context.Background(), markerWriters, len(found), func(_ context.Context, i int) error {
		return w.writeFound(found[i])
	})
	if err != nil {
		return nil, err
	}
	body, err := json.MarshalIndent(componentsState{Commit: commit, Components: states}, "", "  ")
	if err != nil {
		return nil, fail(KindPackage, err)
	}
	if err := w.write(w.path(ComponentsFile), append(body, '\n')); err != nil {
		return nil, err
	}
	return build, w.write(w.path(ToBuildFile), []byte(list.String()))
}

// components reads ComponentsFile (ok false when there is none), checking
// every value before it goes into a key, a record or an output.
func (w *workspace) components(commit string) (st componentsState, ok bool, err error) {
	path := w.path(ComponentsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fail(KindPackage, err)
	}
	bad := func(format string, args ...any) error {
		return fail(KindPackage, fmt.Errorf("%s: %s (run check again)", path, fmt.Sprintf(format, args...)))
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, false, bad("not this version's JSON: %v", err)
	}
	if st.Commit != commit {
		return st, false, bad("for commit %q, not %s", words.Truncate(st.Commit, 80), commit)
	}
	if len(st.Components) == 0 {
		return st, false, bad("lists no components")
	}
	seen := map[string]bool{}
	for _, c := range st.Components {
		if err := manifest.ValidComponent(c.Name); err != nil || seen[c.Name] {
			return st, false, bad("component name %q is not valid or listed twice", words.Truncate(c.Name, 80))
		}
		seen[c.Name] = true
		if !manifest.ValidCodeHash(c.CodeHash) {
			return st, false, bad("component %s: code hash %q is malformed", c.Name, words.Truncate(c.CodeHash, 80))
		}
	}
	return st, true, nil
}

// isListLeftover: name is a compressed file list an upload wrote in the
// package directory (compressList) and did not remove: it was killed.
func isListLeftover(name string) bool {
	ok, _ := filepath.Match(listLeftover, name)
	return ok
}

// removeLeftover removes the package directory's file name (by name: a
// link's target is never touched).
func (w *workspace) removeLeftover(name string) error {
	removed, err := removeIfExists(w.path(name))
	if err != nil {
		return fmt.Errorf("remove the earlier run's %s: %w", name, err)
	}
	if removed {
		w.logf("removed %s: left by an earlier upload", w.path(name))
	}
	return nil
}

// dropListLeftovers removes the compressed file lists an earlier upload
// left in the package directory (prepare does it for check).
func (w *workspace) dropListLeftovers() error {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return fail(KindPackage, err)
	}
	for _, e := range ents {
		if !e.IsDir() && isListLeftover(e.Name()) {
			if err := w.removeLeftover(e.Name()); err != nil {
				return fail(KindPackage, err)
			}
		}
	}
	return nil
}

// listPath is where check keeps the file list of the whole filter (""), or
// of a component (not in the component's directory, which the build makes).
func (w *workspace) listPath(component string) string {
	if component == "" {
		return w.path(CodeHashListFile)
	}
	return w.path(ComponentListDir, component+".gz")
}

// keepList writes the file list of a missed code hash, for upload to store
// beside the cache entry it fills.
func (w *workspace) keepList(component string, data []byte) error {
	return w.write(w.listPath(component), data)
}

// packageFile is a file to upload, with its size when it was listed.
type packageFile struct {
	path string
	size int64
}

// files lists what upload sends from dir (the package directory, or a
// component's): every non-hidden regular file directly in it.
// Sub-directories are left out, as by the original tool; a symlink is
// followed (its target's content is uploaded under the link's name) and one
// that leads nowhere is an error, as is any other kind of file. A directory
// that does not exist wraps os.ErrNotExist.
func (w *workspace) files(dir string) ([]packageFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fail(KindPackage, fmt.Errorf("read package directory: %w", err))
	}
	var files []packageFile
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		// Before the name is logged or becomes a key.
		if err := manifest.ValidName(name); err != nil {
			return nil, fail(KindPackage, fmt.Errorf("%s: %w: rename it, or move it out of the package directory", dir, err))
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows symlinks
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && e.Type()&os.ModeSymlink != 0 {
				return nil, fail(KindPackage, fmt.Errorf("%s is a symlink to nothing", words.Printable(path)))
			}
			return nil, fail(KindPackage, err)
		}
		switch {
		case fi.IsDir():
			w.logf("  skipping sub-directory %s (only files directly in the package directory are uploaded)", words.Printable(name+"/"))
		case fi.Mode().IsRegular():
			files = append(files, packageFile{path: path, size: fi.Size()})
		default:
			return nil, fail(KindPackage, fmt.Errorf("%s is not a regular file (%s)", words.Printable(path), fi.Mode().Type()))
		}
	}
	if len(files) == 0 {
		return nil, fail(KindPackage, fmt.Errorf("%s: %w (upload sends the non-hidden files directly inside it; did the build write them elsewhere?)", dir, ErrNoFiles))
	}
	return files, nil
}

func removeIfExists(path string) (bool, error) {
	err := os.Remove(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, err
}
