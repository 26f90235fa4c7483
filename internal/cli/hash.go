package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/assets"
	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/ghaction"
	"github.com/nsmithuk/s3-asset-manager/internal/gitrepo"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// checkout adapts a git checkout to what the orchestrator needs: HEAD, and
// the code hash under the configured filter and salt.
type checkout struct {
	*gitrepo.Repo
	filter     []codehash.Pattern
	components []codehash.Component
	salt       string
	// keepList: a miss keeps the list (the cache is not read-only), so
	// CodeHash makes its stored encoding with the hash (ComputeList).
	keepList bool
}

// openCheckout opens the repository at path for check and hash alike, so
// both hash the same files: the package directory's untracked files (the
// markers check writes, artifacts an earlier build left in a reused
// workspace) are never source.
func openCheckout(path string, cfg *config.Config) (*checkout, error) {
	r, err := gitrepo.Open(path)
	if errors.Is(err, gitrepo.ErrNotRepository) {
		// Its error starts with the path: name the setting it came from,
		// whose default (./repo) a run in the checkout's root does not find.
		return nil, fmt.Errorf("GIT_REPO_PATH %w", err)
	}
	if err != nil {
		return nil, err
	}
	if err := r.IgnoreUntracked(cfg.PackageDir); err != nil {
		return nil, err
	}
	return &checkout{Repo: r, filter: cfg.Filter, components: cfg.Components, salt: cfg.Salt, keepList: !cfg.CacheReadOnly}, nil
}

// Components hashes every component in one pass. A glob or pattern that
// matches nothing, or two components of one name, is a settings problem.
func (c *checkout) Components(ctx context.Context) ([]assets.ComponentCode, error) {
	res, err := codehash.ComputeComponents(ctx, c.Repo, c.filter, c.components, c.salt)
	if err != nil {
		return nil, settingsProblem(err, "PACKAGE_COMPONENTS")
	}
	out := make([]assets.ComponentCode, len(res))
	for i, r := range res {
		out[i] = assets.ComponentCode{Name: r.Name, Hash: r.Hash, Files: len(r.Files),
			List: codehash.NewComponentList(r, c.filter, c.components, c.salt)}
	}
	return out, nil
}

// ComponentNames names the components for the tracked tree, without
// hashing (see codehash.ComponentNames).
func (c *checkout) ComponentNames(ctx context.Context) ([]string, error) {
	names, ok, err := codehash.ComponentNames(c.Repo, c.components)
	if !ok {
		return nil, err
	}
	return names, nil
}

func (c *checkout) CodeHash(ctx context.Context) (*codehash.List, error) {
	if c.keepList {
		l, err := codehash.ComputeList(ctx, c.Repo, c.filter, c.salt)
		if err != nil {
			return nil, settingsProblem(err, "CODE_HASH_FIND_FILTER")
		}
		return l, nil
	}
	res, err := codehash.Compute(ctx, c.Repo, c.filter, c.salt)
	if err != nil {
		return nil, settingsProblem(err, "CODE_HASH_FIND_FILTER")
	}
	return codehash.NewList(res, c.filter, c.salt), nil
}

// settingsProblem makes a code hash error that the settings can fix a
// KindConfig failure (exit 2): a pattern selecting nothing, a component name
// taken twice or not plain, an unknown PACKAGE_COMPONENT (codehash names the
// setting in these), or a selected file the hash cannot be computed for
// (setting names the one to change). Any other error is returned as it is.
func settingsProblem(err error, setting string) error {
	switch {
	case errors.Is(err, codehash.ErrNoMatch), errors.Is(err, codehash.ErrComponentName), errors.Is(err, codehash.ErrUnknownComponent):
		return &assets.Failure{Kind: assets.KindConfig, Err: err}
	case errors.Is(err, gitrepo.ErrUnsupportedAttribute):
		return &assets.Failure{Kind: assets.KindConfig, Err: fmt.Errorf("%s: %w", setting, err)}
	}
	return err
}

var _ assets.Repo = (*checkout)(nil)

// withTreeProblems adds to settings problems that include PACKAGE_COMPONENTS
// what only the tree shows of the declaration's other lines (a pattern
// selecting no file, a glob matching no directory, a name taken twice), so
// that every problem of the declaration is reported at once. Best effort:
// a repository that cannot be read adds nothing.
func withTreeProblems(ctx context.Context, err error) error {
	var le *config.LoadError
	if !errors.As(err, &le) || !le.Mentions("PACKAGE_COMPONENTS") || len(le.Partial.Components) == 0 {
		return err
	}
	repo, oerr := openCheckout(le.Partial.RepoPath, le.Partial)
	if oerr != nil {
		return err
	}
	_, herr := codehash.ComputeComponents(ctx, repo.Repo, le.Partial.Filter, le.Partial.Components, "")
	if !errors.Is(herr, codehash.ErrNoMatch) && !errors.Is(herr, codehash.ErrComponentName) {
		return err
	}
	more := []error{herr}
	if j, ok := herr.(interface{ Unwrap() []error }); ok {
		more = j.Unwrap()
	}
	return &config.LoadError{Problems: append(slices.Clip(le.Problems), more...), Partial: le.Partial}
}

// runHash prints the code hash, and with -v every file that went into it;
// with --diff REF, what differs from the stored build of REF instead.
func runHash(ctx context.Context, opts options, lookup config.Lookup, stdout io.Writer, logger *log.Logger) error {
	verbose, diffRef := opts.verbose, opts.diff
	if opts.diffSet && (diffRef == "" || strings.HasPrefix(diffRef, "-")) {
		return usageError(errors.New("--diff needs a commit, branch, tag or code hash"))
	}
	cfg, err := config.Load(lookup, config.Requirements{Bucket: diffRef != ""})
	if err != nil {
		return &assets.Failure{Kind: assets.KindConfig, Err: withTreeProblems(ctx, err)}
	}
	if cfg.Component != "" && !cfg.ComponentsEnabled() {
		return usageError(errors.New("PACKAGE_COMPONENT is set but PACKAGE_COMPONENTS is not"))
	}
	if !cfg.CacheEnabled() && !cfg.ComponentsEnabled() {
		return usageError(errors.New("neither CODE_HASH_FIND_FILTER nor PACKAGE_COMPONENTS is set: nothing to hash"))
	}
	repo, err := openCheckout(cfg.RepoPath, cfg)
	if err != nil {
		// Its error names the path.
		return &assets.Failure{Kind: assets.KindGit, Err: fmt.Errorf("open git repository: %w", err)}
	}
	if verbose {
		// A '#gen/**' line of a multi-line filter hashes nothing: say so.
		for _, c := range cfg.FilterComments {
			logger.Printf("CODE_HASH_FIND_FILTER: skipped comment line %q (a pattern that begins with '#' is written [#]...)", c)
		}
	}
	setting := "CODE_HASH_FIND_FILTER"
	if cfg.ComponentsEnabled() {
		setting = "PACKAGE_COMPONENTS"
	}
	failed := func(err error) error {
		if err = settingsProblem(err, setting); assets.KindOf(err) == 0 {
			err = &assets.Failure{Kind: assets.KindGit, Err: fmt.Errorf("code hash: %w", err)}
		}
		return err
	}
	list := func(r codehash.Result) error {
		if !verbose {
			return nil
		}
		return r.WriteList(stdout)
	}
	if !cfg.ComponentsEnabled() {
		res, err := codehash.Compute(ctx, repo.Repo, cfg.Filter, cfg.Salt)
		if err != nil {
			return failed(err)
		}
		if diffRef != "" {
			return diffStored(ctx, cfg, lookup, repo.Repo, codehash.NewList(res, cfg.Filter, cfg.Salt), "", diffRef, stdout, logger)
		}
		if err := list(res); err != nil {
			return err
		}
		fmt.Fprintln(stdout, res.Hash)
		return nil
	}

	// Components: "<hash>  <name>" a line, as sha256sum prints; with
	// PACKAGE_COMPONENT only that component's hash, as without components.
	comps, err := codehash.ComputeComponents(ctx, repo.Repo, cfg.Filter, cfg.Components, cfg.Salt)
	if err != nil {
		return failed(err)
	}
	if comps, err = codehash.Select(comps, cfg.Component); err != nil {
		return failed(err)
	}
	if diffRef != "" {
		if cfg.Component == "" {
			return usageError(errors.New("--diff with PACKAGE_COMPONENTS compares one component: set PACKAGE_COMPONENT"))
		}
		c := comps[0]
		return diffStored(ctx, cfg, lookup, repo.Repo, codehash.NewComponentList(c, cfg.Filter, cfg.Components, cfg.Salt), c.Name, diffRef, stdout, logger)
	}
	for _, c := range comps {
		if err := list(c.Result); err != nil {
			return err
		}
		if cfg.Component != "" {
			fmt.Fprintln(stdout, c.Hash)
		} else {
			fmt.Fprintf(stdout, "%s  %s\n", c.Hash, c.Name)
		}
	}
	return nil
}

// diffStored prints what differs between the checkout and the stored build
// of ref: a 64-hex code hash, or a commit in git's revision syntax (HEAD~1,
// main^, a tag, an abbreviated id; or a full id the checkout does not have).
func diffStored(ctx context.Context, cfg *config.Config, lookup config.Lookup, repo *gitrepo.Repo, cur *codehash.List, component, ref string, stdout io.Writer, logger *log.Logger) error {
	var commit, codeHash string
	if len(ref) == 64 && manifest.ValidCodeHash(strings.ToLower(ref)) {
		codeHash = strings.ToLower(ref)
	} else {
		var err error
		if commit, err = repo.Resolve(ref); err != nil {
			hint := ""
			if !strings.ContainsAny(ref, "~^@:") {
				hint = ", nor a code hash (64 hex digits)"
			}
			return usageError(fmt.Errorf("--diff %s: %v%s", words.Printable(ref), err, hint))
		}
	}
	store, err := openStore(ctx, cfg, lookup, ghaction.New(lookup, io.Discard))
	if err != nil {
		return err
	}
	runner := &assets.Runner{Config: cfg, Store: store, Log: logger}
	e, err := runner.DiffStored(ctx, commit, codeHash, component, cur)
	if err != nil {
		return err
	}
	for _, l := range e.Text(time.Now()) {
		fmt.Fprintln(stdout, words.SafeLines(l)) // its names are printable already; what it quotes from a store may not be
	}
	return nil
}
