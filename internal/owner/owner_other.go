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

// Reusable: never. An Lstat here shows no link count (a hard link to a file
// elsewhere would be written through), and a marker is simply removed and
// written afresh.
func (Dir) Reusable(os.FileInfo) bool { return false }

// Hand does nothing.
func (Dir) Hand(*os.File) error { return nil }
