package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin"
	"github.com/parleyhq/parley/server"
	"github.com/parleyhq/parley/server/api"
)

func (c *cli) pluginCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "plugin", Short: "Policy plugins: list, hash, and the entry point of the built-ins"}
	serve := &cobra.Command{
		Use:   "serve NAME",
		Short: "Run a built-in plugin (started by the server; not for interactive use)",
		Args:  cobra.ExactArgs(1),
		// Nothing may reach stdout before the plugin handshake.
		RunE: func(cmd *cobra.Command, args []string) error { return builtin.Serve(cmd.Context(), args[0]) },
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List built-in and external plugins, starting each once to check it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config(cmd)
			if err != nil {
				return err
			}
			if err := server.PrepareDataDir(cfg.DataDir); err != nil {
				return err
			}
			cat, err := server.NewPluginCatalog(cfg)
			if err != nil {
				return err
			}
			defer plugins.CleanupAll()
			sts, err := plugins.Probe(cmd.Context(), cfg.Plugins, cat, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			type row struct {
				Name, Kind, Source, Version, State, Error string
				Selected                                  bool
			}
			var out []row
			var rows [][]string
			for _, st := range sts {
				src := "external " + st.Path
				if st.Builtin {
					src = "built-in"
				}
				r := row{st.Name, string(st.Kind), src, st.Version, string(st.State), st.LastError, st.Selected}
				out = append(out, r)
				sel := ""
				if st.Selected {
					sel = "*"
				}
				rows = append(rows, []string{st.Name + sel, r.Kind, r.Source, r.Version, r.State, r.Error})
			}
			return c.printTable(out, []string{"NAME (* serves its kind)", "KIND", "SOURCE", "VERSION", "HEALTH", "ERROR"}, rows)
		},
	}
	hash := &cobra.Command{
		Use:   "hash FILE",
		Short: "Print a plugin file's sha256, to pin it in plugins.external",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sum, err := plugins.HashFile(args[0])
			if err != nil {
				return err
			}
			return c.print(map[string]string{"file": args[0], "sha256": sum}, [][2]string{{"sha256", sum}, {"file", args[0]}})
		},
	}
	cmd.AddCommand(serve, list, hash)
	return cmd
}

// limitsBackend is where the limits commands read and write limits.
type limitsBackend interface {
	Limits(ctx context.Context, accountSid string) ([]admission.Limit, error)
	SetLimit(ctx context.Context, accountSid string, r admission.Resource, limit int64) (admission.Limit, error)
	ClearLimit(ctx context.Context, accountSid string, r admission.Resource) (admission.Limit, error)
}

// withLimits reaches the admission plugin for one command: through a
// running server's control socket when one holds the data directory (the
// plugin's lease table lives in that server's plugin process), otherwise by
// taking the data-directory lock and starting the plugin here.
func (c *cli) withLimits(cmd *cobra.Command, fn func(ctx context.Context, b limitsBackend) error) error {
	cfg, err := c.config(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	release, err := server.LockDataDir(cfg.DataDir)
	if errors.Is(err, server.ErrDataDirLocked) {
		return fn(ctx, server.NewControlClient(cfg.DataDir))
	}
	if err != nil {
		return err
	}
	defer release()
	cat, err := server.NewPluginCatalog(cfg)
	if err != nil {
		return err
	}
	defer plugins.CleanupAll()
	sup, err := plugins.NewSupervisor(cfg.Plugins, cat, plugins.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	if err := sup.Start(ctx); err != nil {
		return fmt.Errorf("admission plugin: %w", err)
	}
	defer sup.Close()
	adm, err := admission.NewClient(sup, cfg.Admission, admission.ClientOptions{})
	if err != nil {
		return err
	}
	adm.Start(ctx)
	defer adm.Close(context.WithoutCancel(ctx))
	return fn(ctx, adm)
}

func (c *cli) limitsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "limits", Short: "Admission limits per account and resource (api, calls, calls-cps, messages)"}
	var account string
	show := func(ls []admission.Limit) error {
		out := make([]api.LimitResource, len(ls))
		var rows [][]string
		for i, l := range ls {
			out[i] = api.LimitResource{AccountSid: account, Resource: string(l.Resource), Limit: l.Limit, Current: l.Current, Default: l.Default}
			lim := strconv.FormatInt(l.Limit, 10)
			if l.Limit < 0 {
				lim = "unlimited"
			}
			if l.Default {
				lim += " (default)"
			}
			rows = append(rows, []string{string(l.Resource), lim, strconv.FormatInt(l.Current, 10)})
		}
		return c.printTable(out, []string{"RESOURCE", "LIMIT", "IN USE"}, rows)
	}
	get := &cobra.Command{
		Use:   "get",
		Short: "Show an account's limits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withLimits(cmd, func(ctx context.Context, adm limitsBackend) error {
				ls, err := adm.Limits(ctx, account)
				if err != nil {
					return err
				}
				return show(ls)
			})
		},
	}
	get.Flags().StringVar(&account, "account", "", "account sid (required)")
	_ = get.MarkFlagRequired("account")

	var resource string
	var limit int64
	var useDefault bool
	set := &cobra.Command{
		Use:   "set",
		Short: "Set an account's limit for one resource (-1: unlimited; --default: back to the default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := admission.Resource(resource)
			if !r.Valid() {
				return fmt.Errorf("--resource %q: want api, calls, calls-cps or messages", resource)
			}
			if !useDefault && !cmd.Flags().Changed("limit") {
				return fmt.Errorf("give --limit N (-1 for unlimited) or --default")
			}
			if limit < -1 {
				return fmt.Errorf("--limit %d: want -1 (unlimited) or more", limit)
			}
			return c.withLimits(cmd, func(ctx context.Context, adm limitsBackend) error {
				var l admission.Limit
				var err error
				if useDefault {
					l, err = adm.ClearLimit(ctx, account, r)
				} else {
					l, err = adm.SetLimit(ctx, account, r, limit)
				}
				if err != nil {
					return err
				}
				return show([]admission.Limit{l})
			})
		},
	}
	set.Flags().StringVar(&account, "account", "", "account sid (required)")
	set.Flags().StringVar(&resource, "resource", "", "api, calls, calls-cps or messages (required)")
	set.Flags().Int64Var(&limit, "limit", 0, "the limit; -1 for unlimited")
	set.Flags().BoolVar(&useDefault, "default", false, "remove the account's own limit")
	_ = set.MarkFlagRequired("account")
	_ = set.MarkFlagRequired("resource")
	cmd.AddCommand(get, set)
	return cmd
}
