package main

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestActionExpressionsWhereRunnerAllows loads both action.yml files the way
// GitHub's runner does: it parses ${{ }} in every string of an action's
// metadata against a template schema (actions/runner action_yaml.json) that
// allows expressions only in runs.* (args, env, a composite step's fields),
// outputs.<id>.value and inputs.<id>.default. Anywhere else, a description
// included, the runner fails the whole job with "Unrecognized named-value"
// before the step starts, and actionlint does not check it.
func TestActionExpressionsWhereRunnerAllows(t *testing.T) {
	for _, file := range []string{"action.yml", nativeAction} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var doc yaml.Node
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			var walk func(n *yaml.Node, path []string)
			walk = func(n *yaml.Node, path []string) {
				switch n.Kind {
				case yaml.DocumentNode, yaml.SequenceNode:
					for _, c := range n.Content {
						walk(c, path)
					}
				case yaml.MappingNode:
					for i := 0; i+1 < len(n.Content); i += 2 {
						k := n.Content[i]
						if strings.Contains(k.Value, "${{") {
							t.Errorf("%s line %d: an expression in a key: %q", file, k.Line, k.Value)
						}
						walk(n.Content[i+1], append(path[:len(path):len(path)], k.Value))
					}
				case yaml.ScalarNode:
					if strings.Contains(n.Value, "${{") && !expressionAllowed(path) {
						t.Errorf("%s line %d: ${{ }} in %s, where the runner allows no expression (it fails to load the action): %q",
							file, n.Line, strings.Join(path, "."), n.Value)
					}
				}
			}
			walk(&doc, nil)
		})
	}
}

func expressionAllowed(path []string) bool {
	switch {
	case len(path) >= 2 && path[0] == "runs":
		return true
	case len(path) == 3 && path[0] == "outputs" && path[2] == "value":
		return true
	case len(path) == 3 && path[0] == "inputs" && path[2] == "default":
		return true
	}
	return false
}

func TestExpressionAllowed(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"runs.args", true},
		{"runs.steps.run", true},
		{"outputs.found.value", true},
		{"inputs.commit.default", true},
		{"inputs.commit.description", false},
		{"outputs.found.description", false},
		{"description", false},
		{"name", false},
		{"runs", false},
	} {
		if got := expressionAllowed(strings.Split(tc.path, ".")); got != tc.want {
			t.Errorf("expressionAllowed(%s) = %t, want %t", tc.path, got, tc.want)
		}
	}
}
