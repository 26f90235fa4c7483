//go:build !linux

package roots

// systemRoots: elsewhere the roots are installed (parsed) as the fallback
// package does. On macOS and Windows that parse is wasted (they verify with
// the platform and never use them) but kept: releases are measured on
// Linux; other Unixes use them as Linux does.
func systemRoots(func(string) string) bool { return false }
