//go:build !unix

package cli

import "errors"

// Only root on Unix makes a FIFO in the tests (see flow_test.go).
func mkfifo(string) error { return errors.ErrUnsupported }
