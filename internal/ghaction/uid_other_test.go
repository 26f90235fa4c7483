//go:build !unix

package ghaction

import "os"

func fileUID(os.FileInfo) int { return -1 }
