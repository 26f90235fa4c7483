package ghaction

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/nsmithuk/s3-asset-manager/internal/owner"
)

// makeParents makes the directories path needs that are not there yet,
// each handed to the owner of the directory it is made in (as the package
// directory is): a dotenv file may be named inside a directory the job has
// not made yet, such as the package directory on a fresh clone.
func makeParents(path string) error {
	var missing []string
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for _, d := range slices.Backward(missing) {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		} else if err == nil {
			if err := owner.LikeParent(d); err != nil {
				return fmt.Errorf("hand %s to the owner of its directory: %w", d, err)
			}
		}
	}
	return nil
}
