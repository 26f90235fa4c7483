package cli

import (
	"regexp"
	"strings"
	"testing"
)

// monorepoFiles is a repository of a few lambdas, a service and a library
// they share.
var monorepoFiles = map[string]string{
	"package-lock.json":    "{}\n",
	"libs/util.js":         "exports.util = 1\n",
	"lambdas/fn1/index.js": "exports.fn1 = 1\n",
	"lambdas/fn2/index.js": "exports.fn2 = 1\n",
	"lambdas/fn3/index.js": "exports.fn3 = 1\n",
	"services/api/main.go": "package main\n",
	"docs/index.md":        "docs\n",
}

func TestHashComponents(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	newRepo(t, base, monorepoFiles)
	env := map[string]string{
		"GIT_REPO_PATH":         base,
		"CODE_HASH_FIND_FILTER": "package-lock.json libs/**",
		"PACKAGE_COMPONENTS":    "lambdas/*\napi: services/api/**",
	}
	r := run(t, env, "hash")
	if r.code != ExitOK {
		t.Fatal(r)
	}
	line := regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`)
	hashes := map[string]string{}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q is not \"<hash>  <name>\":\n%s", l, r.stdout)
		}
		hashes[m[2]] = m[1]
		names = append(names, m[2])
	}
	if got := strings.Join(names, " "); got != "api fn1 fn2 fn3" {
		t.Errorf("components %q, want api fn1 fn2 fn3", got)
	}

	env["PACKAGE_COMPONENT"] = "fn2"
	r = run(t, env, "hash", "-v")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != ExitOK || len(lines) != 4 || lines[3] != hashes["fn2"] ||
		!strings.HasSuffix(lines[0], " lambdas/fn2/index.js") || !strings.HasSuffix(lines[2], " package-lock.json") {
		t.Errorf("hash -v of one component, want its 3 files and the hash %s: %v", hashes["fn2"], r)
	}

	for name, tt := range map[string]struct {
		env  map[string]string
		want string
	}{
		"unknown component":  {map[string]string{"PACKAGE_COMPONENT": "fn9"}, `"fn9" is not one of api, fn1, fn2, fn3`},
		"two of one name":    {map[string]string{"PACKAGE_COMPONENTS": "lambdas/*\nfn1: services/**"}, `2 components named "fn1"`},
		"a glob, no dir":     {map[string]string{"PACKAGE_COMPONENTS": "lambda/*"}, `PACKAGE_COMPONENTS: line 1 "lambda/*": matches no directory`},
		"a pattern, no file": {map[string]string{"PACKAGE_COMPONENTS": "api: service/**"}, `PACKAGE_COMPONENTS: line 1 "api: service/**": no source file matches pattern service/**`},
		"a bad line":         {map[string]string{"PACKAGE_COMPONENTS": "my api: services/**"}, "PACKAGE_COMPONENTS: line 1"},
		"component alone":    {map[string]string{"PACKAGE_COMPONENTS": "", "PACKAGE_COMPONENT": "fn1"}, "PACKAGE_COMPONENTS is not"},
	} {
		e := map[string]string{"GIT_REPO_PATH": base, "PACKAGE_COMPONENTS": "lambdas/*\napi: services/api/**"}
		for k, v := range tt.env {
			e[k] = v
		}
		if r := run(t, e, "hash"); r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%s: want exit %d naming %q: %v", name, ExitUsage, tt.want, r)
		}
	}
}
