//go:build !unix

package owner

import "os"

// LikeParent does nothing where files have no Unix owner (Windows): a
// directory there inherits its parent's access rules.
func LikeParent(string) error { return nil }

// LikeParentOf does nothing either.
func LikeParentOf(string, os.FileInfo) error { return nil }
