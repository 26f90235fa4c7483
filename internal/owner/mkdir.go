package owner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// MkdirAll makes dir and the parents it needs, each handed to the owner of
// the directory it is made in (hand; nil is LikeParent), and tells made of
// each one it made, outermost first. A directory that cannot be handed over
// is removed again: what is written into it next would be root's. One made
// meanwhile by another process is taken as it is.
func MkdirAll(dir string, hand func(path string) error, made func(dir string)) error {
	if hand == nil {
		hand = LikeParent
	}
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirAll(parent, hand, made); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if fi, serr := os.Stat(dir); errors.Is(err, os.ErrExist) && serr == nil && fi.IsDir() {
			return nil
		}
		return err
	}
	if err := hand(dir); err != nil {
		os.Remove(dir)
		return fmt.Errorf("hand %s to the owner of its directory: %w", dir, err)
	}
	if made != nil {
		made(dir)
	}
	return nil
}
