//go:build !unix

package owner

// LikeParent does nothing where files have no Unix owner (Windows): a
// directory there inherits its parent's access rules.
func LikeParent(string) error { return nil }
