//go:build !unix

package owner

import "os"

// LikeParent does nothing where files have no Unix owner (Windows): a
// directory there inherits its parent's access rules.
func LikeParent(string) error { return nil }

// Dir is a directory's owner: none here.
type Dir struct{}

// Of is the zero Dir.
func Of(string) Dir { return Dir{} }

// Reusable: a regular file (no link count to look at).
func (Dir) Reusable(fi os.FileInfo) bool { return fi.Mode().IsRegular() }

// Hand does nothing.
func (Dir) Hand(*os.File) error { return nil }
