//go:build !linux

package gitrepo

import (
	"io/fs"
	"os"
	"path/filepath"
)

// An openDir is a directory being walked: its entries, read at once (see
// dir_linux.go for the system calls Linux saves).
type openDir struct {
	path string
	ents []dirEntry
}

type dirEntry struct {
	name string
	typ  fs.FileMode // the type bits, as fs.DirEntry.Type
}

func readDirAt(path string) (*openDir, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	d := &openDir{path: path, ents: make([]dirEntry, len(ents))}
	for i, e := range ents {
		d.ents[i] = dirEntry{e.Name(), e.Type()}
	}
	return d, nil
}

func (d *openDir) close() {}

// lstat stats the entry name without following a symlink.
func (d *openDir) lstat(name string) (fs.FileInfo, error) {
	return os.Lstat(filepath.Join(d.path, name))
}
