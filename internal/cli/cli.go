// Package cli is the program: it reads the command line and the settings,
// builds the git, hash and S3 parts, runs check, upload or download through the
// orchestrator, and turns the outcome into logs and an exit code.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jonboulle/clockwork"

	"golang.org/x/term"

	"github.com/nsmithuk/s3-asset-manager/internal/assets"
	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/ghaction"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
	"github.com/nsmithuk/s3-asset-manager/internal/version"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Exit codes. Documented in the README; scripts may branch on them.
const (
	ExitOK          = 0   // success, found or not
	ExitFailure     = 1   // an unexpected error
	ExitUsage       = 2   // bad command line or settings; nothing was done
	ExitGit         = 3   // the git repository could not be read
	ExitS3          = 4   // S3 refused, failed or could not be reached
	ExitPackage     = 5   // the package directory is missing something or unreadable
	ExitNotFound    = 6   // what was asked for is not in the bucket (download; check with fail-on-miss; hash --diff)
	ExitInterrupted = 130 // stopped by SIGINT or SIGTERM
)

const name = "s3-asset-manager"

// noCommands writes the log with each line the GitHub runner could read as
// a workflow command Go-quoted (words.SafeLines). Names are made printable
// where they are formatted; this catches what no caller could vouch for (a
// store's or the system's message quoting a path), so only the tool's own
// workflow commands, written to stdout by ghaction, reach the runner. The
// log package writes each message in one call, so lines are never split.
type noCommands struct{ w io.Writer }

func (n noCommands) Write(p []byte) (int, error) {
	if s := words.SafeLines(string(p)); s != string(p) {
		if _, err := io.WriteString(n.w, s); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return n.w.Write(p)
}

// Run is the whole program. args[0] selects the command when the binary is
// invoked as "check", "upload" or "download" (Concourse's run: path: check).
func Run(ctx context.Context, args []string, lookup config.Lookup, stdout, stderr io.Writer) int {
	logger := log.New(noCommands{stderr}, "", 0)
	if path, ok := lookup("S3AM_CPUPROFILE"); ok && path != "" {
		// For profiling whole runs (see docs/benchmarks.md); not a user setting.
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	inv, err := parseArgs(args, lookup)
	if err != nil {
		code := report(ctx, logger, err)
		fmt.Fprintf(stderr, "run '%s --help' for usage\n", name)
		return code
	}
	cmd := inv.cmd
	if setsMemory {
		setMemory(cmd)
	}
	switch cmd {
	case "help":
		if inv.helpFor != nil {
			inv.helpFor.help(stdout)
		} else {
			usage(stdout)
		}
		return ExitOK
	case "version":
		fmt.Fprintf(stdout, "%s %s\n", name, version.Version)
		return ExitOK
	case "hash":
		if err := runHash(ctx, inv.opts, lookup, stdout, logger); err != nil {
			return report(ctx, logger, err)
		}
		return ExitOK
	}

	gh := ghaction.New(lookup, stdout)
	cfg, err := config.Load(lookup, config.Requirements{Bucket: true})
	if err != nil {
		err = withTreeProblems(ctx, err)
		gh.Error("invalid settings: " + err.Error())
		// Outputs are never empty: a later `if: found != 'true'` must run the build.
		if oerr := gh.SetOutputs(ghaction.For(cmd)); oerr != nil {
			logger.Printf("error: write step outputs: %v", oerr)
		}
		return report(ctx, logger, &assets.Failure{Kind: assets.KindConfig, Err: err})
	}
	for _, secret := range cfg.Secrets {
		gh.Mask(secret)
	}
	endGroup := gh.Group(name + " " + cmd)
	logger.Printf("%s %s %s", name, version.Version, cmd)

	var out outcome
	var runner *assets.Runner
	err = func() error {
		store, err := openStore(ctx, cfg, lookup, gh)
		if err != nil {
			return err
		}
		runner = &assets.Runner{
			Config:     cfg,
			Store:      store,
			OpenRepo:   func(p string) (assets.Repo, error) { return openCheckout(p, cfg) },
			Log:        logger,
			Tool:       name + " " + version.Version,
			ProgressTo: stderr,
			Terminal:   isTerminal(stderr),
		}
		if c, ok := ctx.Value(clockKey{}).(clockwork.Clock); ok {
			runner.Clock = c
		}
		switch cmd {
		case "check":
			out.check, err = runner.Check(ctx)
		case "upload":
			out.upload, err = runner.Upload(ctx)
		case "download":
			out.download, err = runner.Download(ctx)
		case "prune":
			out.prune, err = runner.Prune(ctx)
		}
		return err
	}()
	endGroup()
	if perr := publish(gh, logger, cfg, cmd, out, err); perr != nil && err == nil {
		// The outputs are part of the result: a check whose outputs were
		// not written failed, and leaves no marker, as any failed check.
		err = perr
		if runner != nil {
			runner.RollBack()
		}
	}
	if err != nil {
		gh.Error(err.Error())
		return report(ctx, logger, err)
	}
	return ExitOK
}

// clockKey carries a test's clock in the context (never set outside tests):
// the time download waits by and prune judges ages by, so that waits take
// no real time and rules of days are tested without waiting days.
type clockKey struct{}

// storeClockKey carries a test's clock for the store (never set outside
// tests): its request timeouts, stall watches and backoffs, so that a
// stalled body is given up without waiting. Apart from clockKey's: a test
// that moves one need not move the other.
type storeClockKey struct{}

// storeClock is the clock a test set for the store, or nil (the real one).
func storeClock(ctx context.Context) clockwork.Clock {
	c, _ := ctx.Value(storeClockKey{}).(clockwork.Clock)
	return c
}

// openStore connects to the bucket the settings name. It sends no request,
// so its failures are the AWS configuration's: settings, exit 2.
func openStore(ctx context.Context, cfg *config.Config, lookup config.Lookup, gh *ghaction.Reporter) (*s3store.Store, error) {
	// In GitHub Actions with id-token: write, AWS_ROLE_ARN alone is enough:
	// the job's OIDC token stands in for AWS_WEB_IDENTITY_TOKEN_FILE.
	var webRole string
	var idToken func(context.Context) (string, error)
	if arn, _ := lookup("AWS_ROLE_ARN"); arn != "" {
		if f, _ := lookup("AWS_WEB_IDENTITY_TOKEN_FILE"); f == "" {
			if tok := gh.IDTokenSource("sts.amazonaws.com"); tok != nil {
				webRole, idToken = arn, tok
			}
		}
	}
	store, err := s3store.New(ctx, s3store.Options{
		WebIdentityRole: webRole,
		IDToken:         idToken,
		Lookup:          lookup,
		Bucket:          cfg.Bucket,
		Endpoint:        cfg.Endpoint,
		PathStyle:       cfg.PathStyle,
		Role:            cfg.Role,
		Concurrency:     cfg.Concurrency,
		RequestTimeout:  cfg.RequestTimeout,
		ContentMD5:      cfg.ContentMD5,
		Clock:           storeClock(ctx),
	})
	if err != nil {
		kind := assets.KindS3
		if errors.Is(err, s3store.ErrConfig) {
			kind = assets.KindConfig
		}
		return nil, &assets.Failure{Kind: kind, Err: err}
	}
	return store, nil
}

// outcome holds the result of whichever command ran.
type outcome struct {
	check    assets.CheckResult
	upload   assets.UploadResult
	download assets.DownloadResult
	prune    assets.PruneResult
}

// publish tells the CI system the result: step outputs and a job summary on
// GitHub, a dotenv file where one was asked for. Written on failure too, so
// that found and cache-hit are never empty.
func publish(gh *ghaction.Reporter, logger *log.Logger, cfg *config.Config, cmd string, out outcome, runErr error) error {
	o := ghaction.For(cmd)
	switch cmd {
	case "check":
		c := out.check
		o = ghaction.Outputs{Found: c.Found, CacheHit: c.CacheHit, CommitHash: c.Commit, CodeHash: c.CodeHash,
			Components: componentOutputs(c.Components)}
		if c.Found {
			o.Prefix, o.Files = c.Prefix, setFiles(c.Prefix, c.FileList)
		}
	case "upload":
		o = ghaction.Outputs{Found: out.upload.Skipped == assets.SkippedFound, CommitHash: out.upload.Commit, CodeHash: out.upload.CodeHash,
			Components: componentOutputs(out.upload.Components)}
	case "download":
		d := out.download
		o = ghaction.Outputs{CommitHash: d.Commit}
		if runErr == nil {
			o.Found, o.Prefix, o.Files = true, d.Prefix, setFiles(d.Prefix, d.Files)
		}
	case "prune":
		o.Prune = pruneOutputs(out.prune)
	}
	var errs []error
	if err := gh.SetOutputs(o); err != nil {
		errs = append(errs, outputsFailure(fmt.Errorf("write step outputs: %w", err)))
	}
	if runErr == nil {
		var err error
		switch cmd {
		case "check":
			c := out.check
			s := ghaction.CheckSummary{Bucket: cfg.Bucket, Commit: c.Commit, CodeHash: c.CodeHash,
				Found: c.Found, CacheHit: c.CacheHit, Where: c.Where, Files: c.Files, Bytes: c.Bytes, Components: o.Components}
			if c.Miss != nil {
				s.Miss, s.MissLines = c.Miss.Sentence(time.Now()), c.Miss.Lines
			}
			err = gh.SummarizeCheck(s)
		case "upload":
			u := out.upload
			err = gh.SummarizeUpload(ghaction.UploadSummary{Commit: u.Commit, Where: u.Where, Skipped: u.Skipped, Files: setFiles("", u.Files)})
		case "download":
			d := out.download
			err = gh.SummarizeDownload(ghaction.DownloadSummary{Commit: d.Commit, Where: d.Where, Files: o.Files})
		case "prune":
			err = gh.SummarizePrune(pruneSummary(cfg, out.prune))
		}
		if err != nil {
			errs = append(errs, outputsFailure(fmt.Errorf("write job summary: %w", err)))
		}
	}
	if cfg.DotenvFile != "" {
		size, err := ghaction.WriteDotenv(cfg.DotenvFile, o)
		if err != nil {
			errs = append(errs, outputsFailure(fmt.Errorf("RESULT_DOTENV_FILE: %w", err)))
		} else if w := ghaction.DotenvSizeWarning(cfg.DotenvFile, size); w != "" {
			logger.Print(w)
		}
	}
	return errors.Join(errs...)
}

// outputsFailure attributes a file of outputs that could not be written to
// the local files (exit 5, as a package or download directory that cannot
// be); a value refused as unsafe stays unexpected (exit 1).
func outputsFailure(err error) error {
	if errors.Is(err, ghaction.ErrWrite) {
		return &assets.Failure{Kind: assets.KindPackage, Err: err}
	}
	return err
}

// componentOutputs gives the components this run dealt with (all, or
// PACKAGE_COMPONENT's) as the outputs and the summary show them.
func componentOutputs(states []assets.ComponentState) []ghaction.Component {
	var out []ghaction.Component
	for _, s := range states {
		if s.Checked {
			out = append(out, ghaction.Component{Name: s.Name, Found: s.Found, CacheHit: s.CacheHit, Build: s.Build, CodeHash: s.CodeHash, Reason: s.Reason})
		}
	}
	return out
}

// setFiles describes a set's files for the outputs and summaries.
func setFiles(prefix string, files []manifest.File) []ghaction.File {
	out := make([]ghaction.File, 0, len(files))
	for _, f := range files {
		out = append(out, ghaction.File{Name: f.Name, Key: prefix + f.Name, Size: f.Size, PackageHash: f.PackageHash()})
	}
	return out
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `%[1]s %[2]s: skip CI builds whose artifacts are already in S3.

Usage:
`, name, version.Version)
	for _, c := range commands {
		fmt.Fprintf(w, "  %s %s\n", name, c.synopsis)
		for _, l := range c.doc {
			fmt.Fprintf(w, "                   %s\n", l)
		}
	}
	fmt.Fprintf(w, `  %[1]s --version
  %[1]s <command> --help   a command's own usage and flags
Also runs as "check", "upload", "download" and "prune" through links of those names.

Settings (environment variables; GitHub Action inputs win when set):
`, name)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, s := range config.Settings {
		def := s.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Env, def, s.Doc)
	}
	tw.Flush()
	fmt.Fprintf(w, `
The AWS SDK's own variables apply as usual: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_PROFILE, AWS_REGION / AWS_DEFAULT_REGION, AWS_ENDPOINT_URL(_S3),
AWS_CA_BUNDLE, AWS_MAX_ATTEMPTS, AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE.

Exit codes: 0 success (found or not), 1 unexpected error, 2 bad usage or settings,
3 git error, 4 S3 error, 5 package directory problem, 6 not found (download, check with
PACKAGE_ASSETS_FAIL_ON_MISS, hash --diff: no stored build of REF), 130 interrupted.
`)
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
