// Package words formats numbers and values for people, one way across the
// program: "1 file" and "2 files", a long value cut short.
package words

import (
	"strconv"
	"unicode/utf8"
)

// Plural is one when n is 1, else many ("file", "files").
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Count is n and its noun: "1 file", "0 files", "3 files".
func Count(n int, one, many string) string {
	return strconv.Itoa(n) + " " + Plural(n, one, many)
}

// Truncate cuts s to at most n bytes, at a character boundary, and marks
// the cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
