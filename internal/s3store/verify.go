//go:build !s3am_unverified

package s3store

import (
	"crypto/sha256"
	"hash"
)

// newFileHash is the hash a downloaded file's bytes go through, to be
// compared with the SHA-256 its record holds. (scripts/bench also builds the
// tool with the tag s3am_unverified, to measure what this hash costs.)
func newFileHash(_ []byte) hash.Hash { return sha256.New() }
