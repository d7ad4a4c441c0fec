package builtin

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin/admission"
	"github.com/parleyhq/parley/plugins/builtin/partners"
	"github.com/parleyhq/parley/plugins/builtin/usage"
	"github.com/parleyhq/parley/plugins/sdk"
)

// Names of the built-in plugins.
const (
	Admission = admission.Name
	Usage     = usage.Name
	Partners  = partners.Name
)

// Plugin is one built-in plugin.
type Plugin struct {
	plugins.Builtin
	// Serve runs the plugin in this process until the host ends it.
	Serve func(ctx context.Context, getenv func(string) string) error
}

// Registry returns the built-in plugins by name.
func Registry() map[string]Plugin {
	return map[string]Plugin{
		admission.Name: {
			Builtin: plugins.Builtin{Name: admission.Name, Kind: sdk.KindAdmission, Version: admission.Version},
			Serve:   admission.Serve,
		},
		partners.Name: {
			Builtin: plugins.Builtin{Name: partners.Name, Kind: sdk.KindPartners, Version: partners.Version},
			Serve:   partners.Serve,
		},
		usage.Name: {
			Builtin: plugins.Builtin{Name: usage.Name, Kind: sdk.KindUsage, Version: usage.Version},
			Serve:   usage.Serve,
		},
	}
}

// Specs lists the built-ins for plugins.NewCatalog.
func Specs() []plugins.Builtin {
	var out []plugins.Builtin
	for _, p := range Registry() {
		out = append(out, p.Builtin)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Serve runs the named built-in plugin: the body of `parley plugin serve
// <name>`. It must be the only thing the command does: nothing may be
// written to stdout before the go-plugin handshake.
func Serve(ctx context.Context, name string) error {
	p, ok := Registry()[name]
	if !ok {
		return fmt.Errorf("plugin serve: %w %q", plugins.ErrUnknownPlugin, name)
	}
	return p.Serve(ctx, os.Getenv)
}
