package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/server"
	"github.com/parleyhq/parley/server/config"
)

func (c *cli) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the server (embedded SQLite in ./parley-data by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config(cmd)
			if err != nil {
				return err
			}
			log := server.NewLogger(cfg.Log, c.stderr)
			ctx := cmd.Context()
			srv, err := server.New(ctx, cfg, log, version)
			if err != nil {
				return err
			}
			return srv.Run(ctx, func(l server.Listening) { c.banner(ctx, cfg, srv, l) })
		},
	}
}

// banner tells a person at the terminal where the server is and what to do next.
func (c *cli) banner(ctx context.Context, cfg config.Config, srv *server.Server, l server.Listening) {
	base := "http://" + l.HTTP
	fmt.Fprintf(c.stdout, "Parley %s\n", version)
	fmt.Fprintf(c.stdout, "  HTTP API:  %s/2010-04-01\n", base)
	fmt.Fprintf(c.stdout, "  ops:       %s/healthz  %s/readyz  %s/metrics\n", base, base, base)
	for _, t := range []string{"udp", "tcp", "tls", "ws", "wss"} {
		if a, ok := l.SIP[t]; ok {
			fmt.Fprintf(c.stdout, "  SIP %-4s   %s\n", t+":", a)
		}
	}
	fmt.Fprintf(c.stdout, "  data dir:  %s\n", l.DataDir)
	if n, err := srv.Store().CountAccounts(ctx); err == nil && n == 0 {
		dirFlag := ""
		if filepath.Clean(cfg.DataDir) != filepath.Clean(config.Default().DataDir) {
			dirFlag = fmt.Sprintf(" --data-dir %q", cfg.DataDir)
		}
		fmt.Fprintf(c.stdout, "No accounts yet. Create the first one (in another terminal):\n  parley account create%s --name \"My account\"\n", dirFlag)
	}
}
