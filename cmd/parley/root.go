package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/server"
	"github.com/parleyhq/parley/server/config"
	"github.com/parleyhq/parley/store"
)

// cli carries what every subcommand needs; no package-level state.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	root           *cobra.Command
	jsonOut        bool
}

func newRootCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	c := &cli{stdout: stdout, stderr: stderr, getenv: getenv}
	root := &cobra.Command{
		Use:           "parley",
		Short:         "Parley: a self-hosted SIP/WebRTC voice and messaging server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	config.Flags(root.PersistentFlags())
	root.PersistentFlags().BoolVar(&c.jsonOut, "json", false, "print results as JSON")
	c.root = root
	root.AddCommand(c.serveCmd(), c.accountCmd(), c.keyCmd(), c.tokenCmd(), c.appCmd(), c.sipCmd(), c.partnerCmd(), c.pluginCmd(), c.limitsCmd(), c.migrateCmd(), c.versionCmd())
	return root
}

func (c *cli) config(cmd *cobra.Command) (config.Config, error) {
	return config.Load(cmd.Flags(), c.getenv)
}

// withStore opens the data directory's store for one CLI command. It works
// while a server runs on the same directory: SQLite WAL lets both write.
func (c *cli) withStore(cmd *cobra.Command, fn func(ctx context.Context, st *store.Store) error) error {
	cfg, err := c.config(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	st, err := server.OpenStore(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(ctx, st)
}

// print writes v as JSON with --json, otherwise as aligned "name: value" rows.
func (c *cli) print(v any, rows [][2]string) error {
	if c.jsonOut {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// printTable writes v as JSON with --json, otherwise a table with a header row.
func (c *cli) printTable(v any, header []string, rows [][]string) error {
	if c.jsonOut {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, r := range append([][]string{header}, rows...) {
		for i, cell := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, cell)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
