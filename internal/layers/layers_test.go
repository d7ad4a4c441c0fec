package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/parleyhq/parley/"

// groups lists the module's packages by layer, lowest first. A pattern ending
// in "/..." is a group: the package and everything below it, which may import
// each other. A package may import packages of lower layers only; imports
// across groups of one layer are refused unless listed in sameLayer.
// ARCHITECTURE.md draws the same table; keep the two together.
var groups = [][]string{
	// 0: leaves — no import of the module, or only of other leaves' groups below.
	{"internal/sid", "internal/sqlite", "internal/browsertest", "internal/layers", "signaling/twiml", "signaling/media/...",
		"presence/pidf", "presence/accesstoken", "plugins/proto/...", "web"},
	// 1: webhook client, presence, the plugin SDK.
	{"internal/webhook", "presence", "plugins/sdk"},
	// 2: the core store; the call engine and messaging; the plugin host runtime; the built-ins' shared runner.
	{"store/...", "signaling/calls/...", "signaling/messaging", "plugins", "plugins/builtin/internal/..."},
	// 3: transports, the policy host clients, the built-in plugins.
	{"signaling/sip/...", "signaling/webrtc", "admission", "usage", "partners", "plugins/builtin/*"},
	// 4: routing, the REST API, settings, the built-in registry.
	{"routing", "server/api", "server/config", "plugins/builtin"},
	// 5: the composition root.
	{"server"},
	// 6: programs.
	{"cmd/...", "bench/...", "examples/..."},
}

// sameLayer lists the imports allowed between groups of one layer, as
// "importer -> imported" group patterns, each with its reason.
var sameLayer = map[string]bool{
	// The portal shows the account's usage and triggers through the usage host client.
	"partners -> usage": true,
}

// builtinAllowed is what a built-in plugin (plugins/builtin/<name>) may
// import of the module: the SDK, the plugin protocols and internal leaves —
// never the core store or a host package.
var builtinAllowed = []string{"plugins/sdk", "plugins/proto/...", "internal/sid", "internal/sqlite", "plugins/builtin/internal/..."}

type pkg struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; is the test run inside the module?", len(pkgs))
	}
	return pkgs
}

// match reports whether the module-relative path rel matches pattern.
func match(pattern, rel string) bool {
	switch {
	case strings.HasSuffix(pattern, "/..."):
		base := strings.TrimSuffix(pattern, "/...")
		return rel == base || strings.HasPrefix(rel, base+"/")
	case strings.HasSuffix(pattern, "/*"):
		base := strings.TrimSuffix(pattern, "/*")
		rest, ok := strings.CutPrefix(rel, base+"/")
		return ok && rest != "" && !strings.Contains(rest, "/")
	}
	return pattern == rel
}

// place finds rel's layer and group pattern; the most specific pattern wins
// (plugins/builtin over plugins/builtin/*, which is checked separately).
func place(rel string) (layer int, group string, ok bool) {
	best := -1
	for l, gs := range groups {
		for _, g := range gs {
			if match(g, rel) && len(g) > best {
				best, layer, group, ok = len(g), l, g, true
			}
		}
	}
	return layer, group, ok
}

func TestImportsPointDown(t *testing.T) {
	var problems []string
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module)
		layer, group, ok := place(rel)
		if !ok {
			problems = append(problems, rel+": not in the layer table (add it to groups and to ARCHITECTURE.md)")
			continue
		}
		for _, imp := range p.Imports {
			irel, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			il, ig, ok := place(irel)
			switch {
			case !ok:
				problems = append(problems, rel+" imports "+irel+", which is not in the layer table")
			case group == ig && strings.HasSuffix(group, "/..."):
				// within one group
			case il > layer:
				problems = append(problems, rel+" (layer "+itoa(layer)+") imports "+irel+" (layer "+itoa(il)+"): upward")
			case il == layer && !sameLayer[group+" -> "+ig]:
				problems = append(problems, rel+" imports "+irel+": same layer "+itoa(layer)+" ("+group+" -> "+ig+" is not in sameLayer)")
			}
		}
	}
	report(t, problems)
}

func TestBuiltinPluginsImportOnlyTheSDK(t *testing.T) {
	var problems []string
	n := 0
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module)
		if !match("plugins/builtin/*", rel) {
			continue
		}
		n++
		for _, imp := range p.Imports {
			irel, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			allowed := false
			for _, a := range builtinAllowed {
				allowed = allowed || match(a, irel)
			}
			if !allowed {
				problems = append(problems, rel+" imports "+irel+" (a built-in may import only "+strings.Join(builtinAllowed, ", ")+")")
			}
		}
	}
	if n == 0 {
		problems = append(problems, "no package under plugins/builtin/<name>: where did the built-in plugins go?")
	}
	report(t, problems)
}

func TestPatterns(t *testing.T) {
	for _, c := range []struct {
		pattern, rel string
		want         bool
	}{
		{"store/...", "store", true},
		{"store/...", "store/x", true},
		{"store/...", "storefront", false},
		{"plugins/builtin/*", "plugins/builtin/usage", true},
		{"plugins/builtin/*", "plugins/builtin", false},
		{"plugins/builtin/*", "plugins/builtin/usage/x", false},
		{"server", "server/api", false},
	} {
		if got := match(c.pattern, c.rel); got != c.want {
			t.Errorf("match(%q, %q) = %v", c.pattern, c.rel, got)
		}
	}
	if l, g, _ := place("plugins/builtin"); l != 4 || g != "plugins/builtin" {
		t.Errorf("place(plugins/builtin) = %d %q", l, g)
	}
	if l, _, _ := place("plugins/builtin/usage"); l != 3 {
		t.Errorf("place(plugins/builtin/usage) = %d", l)
	}
}

func report(t *testing.T, problems []string) {
	t.Helper()
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

func itoa(i int) string { return string(rune('0' + i)) }
