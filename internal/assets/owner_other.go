//go:build !unix

package assets

// chownLikeParent does nothing where files have no Unix owner (Windows): a
// directory there inherits its parent's access rules.
func chownLikeParent(string) error { return nil }
