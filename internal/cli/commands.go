package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"path/filepath"
	"strings"

	"github.com/nsmithuk/s3-asset-manager/internal/assets"
	"github.com/nsmithuk/s3-asset-manager/internal/config"
)

// command is one subcommand: its synopsis and help, and its flags (a
// flag.FlagSet of its own, so that each command knows only its flags and
// answers --help with its own usage).
type command struct {
	name     string
	synopsis string   // after the program's name
	doc      []string // one line each, for --help
	// flags defines the command's flags on fs, into opts.
	flags func(fs *flag.FlagSet, opts *options)
}

// options are the flags of whichever command runs.
type options struct {
	verbose bool   // hash -v
	diff    string // hash --diff REF
	diffSet bool   // --diff was given (empty or not)
	version bool
}

var commands = []command{
	{name: "check", synopsis: "check", doc: []string{
		"look for the commit's artifacts; touch $PACKAGE_DIRECTORY/.found if complete.",
		"With PACKAGE_COMPONENTS: per component; <name>/.found for each complete",
		"one, the names to build in $PACKAGE_DIRECTORY/.components-to-build",
	}},
	{name: "upload", synopsis: "upload", doc: []string{
		"upload the package directory's files, unless .found exists.",
		"With components: each one check listed, from $PACKAGE_DIRECTORY/<name>/",
	}},
	{name: "download", synopsis: "download", doc: []string{
		"fetch a commit's complete set into the package directory, every file",
		"verified against its completion record; exit 6 when it is not there",
	}},
	{name: "prune", synopsis: "prune", doc: []string{
		"plan what no pipeline will use again (old commit sets, unused cache",
		"entries, sets without a record, abandoned multipart uploads) and",
		"print it; delete it with PACKAGE_ASSETS_PRUNE_APPLY=true",
	}},
	{name: "hash", synopsis: "hash [-v] [--diff REF]", doc: []string{
		"print the code hash of GIT_REPO_PATH for CODE_HASH_FIND_FILTER;",
		"-v also lists every file that went in (mode, id, path).",
		"With PACKAGE_COMPONENTS: \"<hash>  <name>\" a component",
		"(PACKAGE_COMPONENT: that one's hash alone).",
		"--diff REF: what differs from the stored build of REF (a commit, branch or tag,",
		"or a code hash): files, patterns, salt; needs the bucket settings.",
		"With components: the one PACKAGE_COMPONENT names",
	}, flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.verbose, "v", false, "also list every file that went in (mode, id, path)")
		fs.BoolVar(&o.verbose, "verbose", false, "the same as -v")
		fs.StringVar(&o.diff, "diff", "", "compare with the stored build of `REF` (a commit, branch, tag or code hash)")
	}},
}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// flagSet is the command's own flags, and -V/--version, which every command takes.
func (c *command) flagSet(opts *options) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by Run
	if c.flags != nil {
		c.flags(fs, opts)
	}
	fs.BoolVar(&opts.version, "V", false, "print the version")
	fs.BoolVar(&opts.version, "version", false, "the same as -V")
	return fs
}

// help writes the command's usage.
func (c *command) help(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s\n\n", name, c.synopsis)
	for _, l := range c.doc {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintf(w, "\nFlags:\n")
	fs := c.flagSet(&options{})
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nSettings come from environment variables: see '%s --help'.\n", name)
}

// invocation is what the command line asks for.
type invocation struct {
	cmd  string // a command's name, or "help" or "version"
	opts options
	// helpFor is the command whose help is asked for (nil: the program's).
	helpFor *command
}

// usageError is a bad command line: exit 2, said as it is.
func usageError(err error) error { return &assets.Failure{Kind: assets.KindUsage, Err: err} }

// parseArgs finds the command: from the program's name (check, upload,
// download, prune), else the first argument, else the action input "mode"; then
// parses the command's own flags.
func parseArgs(args []string, lookup config.Lookup) (inv invocation, err error) {
	var prog string
	if len(args) > 0 {
		prog, args = filepath.Base(args[0]), args[1:]
	}
	cmd := findCommand(prog)
	if cmd == nil || cmd.name == "hash" {
		// The program's own flags come before the command.
		top := flag.NewFlagSet(name, flag.ContinueOnError)
		top.SetOutput(io.Discard)
		var version bool
		top.BoolVar(&version, "V", false, "")
		top.BoolVar(&version, "version", false, "")
		if err := top.Parse(args); errors.Is(err, flag.ErrHelp) {
			return invocation{cmd: "help"}, nil
		} else if err != nil {
			return inv, usageError(err)
		}
		if version {
			return invocation{cmd: "version"}, nil
		}
		args = top.Args()
		if len(args) == 0 {
			m, ok := lookup(config.InputEnv("mode"))
			if !ok || strings.TrimSpace(m) == "" {
				return inv, usageError(errors.New("no command: give check, upload, download, prune or hash"))
			}
			args = []string{strings.TrimSpace(m)}
		}
		switch args[0] {
		case "help":
			inv.cmd = "help"
			if len(args) > 1 {
				if inv.helpFor = findCommand(args[1]); inv.helpFor == nil {
					return inv, usageError(fmt.Errorf("help: unknown command %q", args[1]))
				}
			}
			return inv, nil
		case "version":
			return invocation{cmd: "version"}, nil
		}
		if cmd = findCommand(args[0]); cmd == nil {
			return inv, usageError(fmt.Errorf("unknown command %q: give check, upload, download, prune or hash", args[0]))
		}
		args = args[1:]
	}
	fs := cmd.flagSet(&inv.opts)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return invocation{cmd: "help", helpFor: cmd}, nil
	} else if err != nil {
		return inv, usageError(fmt.Errorf("%s: %w", cmd.name, err))
	}
	if inv.opts.version {
		return invocation{cmd: "version"}, nil
	}
	fs.Visit(func(f *flag.Flag) { inv.opts.diffSet = inv.opts.diffSet || f.Name == "diff" })
	if fs.NArg() > 0 {
		if cmd.name == "hash" {
			return inv, usageError(fmt.Errorf("hash takes only -v or --diff REF, got %q", fs.Args()))
		}
		return inv, usageError(fmt.Errorf("%s takes no arguments, got %q (settings come from environment variables)", cmd.name, fs.Args()))
	}
	inv.cmd = cmd.name
	return inv, nil
}

// exitCode is the one place a failure's kind becomes an exit code.
func exitCode(ctx context.Context, err error) int {
	if err == nil {
		return ExitOK
	}
	if ctx.Err() != nil {
		return ExitInterrupted
	}
	switch assets.KindOf(err) {
	case assets.KindConfig, assets.KindUsage:
		return ExitUsage
	case assets.KindGit:
		return ExitGit
	case assets.KindS3:
		return ExitS3
	case assets.KindPackage:
		return ExitPackage
	case assets.KindNotFound:
		return ExitNotFound
	}
	return ExitFailure
}

// report logs a failure and gives its exit code.
func report(ctx context.Context, logger *log.Logger, err error) int {
	code := exitCode(ctx, err)
	switch {
	case code == ExitInterrupted:
		logger.Printf("error: interrupted: %v", err)
	case assets.KindOf(err) == assets.KindConfig:
		// As the settings' own problems are: each on its line.
		logger.Printf("error: invalid settings:\n%s", indent(err.Error()))
	default:
		logger.Printf("error: %v", err)
	}
	return code
}
