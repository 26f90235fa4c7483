package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/assets"
)

// Each command has its own flags and answers --help with its own usage; a
// flag of another command is bad usage.
func TestCommandFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		code int
		out  string // in stdout
	}{
		{[]string{"hash", "--help"}, ExitOK, "Usage: s3-asset-manager hash [-v] [--diff REF]"},
		{[]string{"hash", "-h"}, ExitOK, "-diff REF"},
		{[]string{"check", "--help"}, ExitOK, "Usage: s3-asset-manager check"},
		{[]string{"help", "download"}, ExitOK, "Usage: s3-asset-manager download"},
		{[]string{"check", "-V"}, ExitOK, "s3-asset-manager "},
		{[]string{"check", "-v"}, ExitUsage, ""},
		{[]string{"upload", "--diff", "x"}, ExitUsage, ""},
		{[]string{"download", "extra"}, ExitUsage, ""},
		{[]string{"hash", "extra"}, ExitUsage, ""},
		{[]string{"hash", "--bogus"}, ExitUsage, ""},
		{[]string{"bogus"}, ExitUsage, ""},
		{[]string{"help", "bogus"}, ExitUsage, ""},
	} {
		r := run(t, map[string]string{}, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.out) {
			t.Errorf("%v: %v", tt.args, r)
		}
	}
}

// Through a symlink named after the command, its flags and --help work.
func TestCommandFromProgramName(t *testing.T) {
	t.Parallel()
	inv, err := parseArgs([]string{"/usr/local/bin/check", "--help"}, func(string) (string, bool) { return "", false })
	if err != nil || inv.cmd != "help" || inv.helpFor == nil || inv.helpFor.name != "check" {
		t.Errorf("check --help: %+v, %v", inv, err)
	}
	inv, err = parseArgs([]string{"s3-asset-manager"}, func(k string) (string, bool) { return " upload ", k == "INPUT_MODE" })
	if err != nil || inv.cmd != "upload" {
		t.Errorf("mode input: %+v, %v", inv, err)
	}
}

// One map from a failure's kind to the exit code, whoever attached it; the
// outermost attribution wins, and an interruption wins over every kind.
func TestExitCode(t *testing.T) {
	t.Parallel()
	s3 := &assets.Failure{Kind: assets.KindS3, Err: errors.New("get: not found")}
	for _, tt := range []struct {
		err  error
		code int
	}{
		{nil, ExitOK},
		{errors.New("bug"), ExitFailure},
		{usageError(errors.New("x")), ExitUsage},
		{&assets.Failure{Kind: assets.KindGit, Err: errors.New("x")}, ExitGit},
		{fmt.Errorf("lookup: %w", s3), ExitS3},
		{&assets.Failure{Kind: assets.KindPackage, Err: errors.New("x")}, ExitPackage},
		{&assets.Failure{Kind: assets.KindNotFound, Err: s3}, ExitNotFound},
	} {
		if got := exitCode(context.Background(), tt.err); got != tt.code {
			t.Errorf("%v: exit %d, want %d", tt.err, got, tt.code)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := exitCode(ctx, s3); got != ExitInterrupted {
		t.Errorf("interrupted: exit %d", got)
	}
}
