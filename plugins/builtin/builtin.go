package builtin

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/plugins"
	partnersplugin "github.com/parleyhq/parley/plugins/partners"
	"github.com/parleyhq/parley/plugins/sdk"
	"github.com/parleyhq/parley/plugins/usage"
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
		admission.PluginName: {
			Builtin: plugins.Builtin{Name: admission.PluginName, Kind: sdk.KindAdmission, Version: admission.PluginVersion},
			Serve:   admission.ServePlugin,
		},
		partnersplugin.PluginName: {
			Builtin: plugins.Builtin{Name: partnersplugin.PluginName, Kind: sdk.KindPartners, Version: partnersplugin.PluginVersion},
			Serve:   partnersplugin.ServePlugin,
		},
		usage.PluginName: {
			Builtin: plugins.Builtin{Name: usage.PluginName, Kind: sdk.KindUsage, Version: usage.PluginVersion},
			Serve:   usage.ServePlugin,
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
