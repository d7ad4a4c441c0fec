package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/presence/accesstoken"
	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/store"
)

func (c *cli) keyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage API keys (SK…)"}

	var account, name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key; its secret is shown this once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := api.CheckFriendlyName(name); err != nil {
				return err
			}
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				if _, err := st.Account(ctx, account); err != nil {
					return err
				}
				k, err := st.CreateKey(ctx, account, name)
				if err != nil {
					return err
				}
				return c.print(api.NewKeyResource(k, true), [][2]string{
					{"sid", k.Sid}, {"account_sid", k.AccountSid}, {"friendly_name", k.FriendlyName},
					{"secret", k.Secret + "   (shown once: store it now)"},
				})
			})
		},
	}
	create.Flags().StringVar(&account, "account", "", "account sid (required)")
	create.Flags().StringVar(&name, "name", "", "friendly name")
	_ = create.MarkFlagRequired("account")

	var listAccount string
	list := &cobra.Command{
		Use:   "list",
		Short: "List an account's valid keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				keys, _, err := st.ListKeys(ctx, listAccount, store.Page{Size: 1000})
				if err != nil {
					return err
				}
				out := make([]api.KeyResource, len(keys))
				var rows [][]string
				for i, k := range keys {
					out[i] = api.NewKeyResource(k, false)
					rows = append(rows, []string{k.Sid, k.DateCreated.Format(time.RFC3339), k.FriendlyName})
				}
				return c.printTable(out, []string{"SID", "CREATED", "NAME"}, rows)
			})
		},
	}
	list.Flags().StringVar(&listAccount, "account", "", "account sid (required)")
	_ = list.MarkFlagRequired("account")

	revoke := &cobra.Command{
		Use:   "revoke SID",
		Short: "Revoke a key: REST requests and tokens signed with it are refused",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				if err := st.RevokeKey(ctx, args[0]); err != nil {
					return err
				}
				return c.print(map[string]string{"sid": args[0], "status": "revoked"}, [][2]string{{"revoked", args[0]}})
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func (c *cli) tokenCmd() *cobra.Command {
	var p accesstoken.MintParams
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint a client access token signed with an API key",
		Long: "Mint an access token (JWT, cty twilio-fpa;v=1) for a browser or SIP client.\n" +
			"--incoming makes client:<identity> reachable; --outgoing-app lets it place calls.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				k, err := st.Key(ctx, p.KeySid)
				if err != nil {
					return err
				}
				if k.Revoked() {
					return fmt.Errorf("key %s is revoked", k.Sid)
				}
				if p.AccountSid == "" {
					p.AccountSid = k.AccountSid
				}
				if k.AccountSid != p.AccountSid {
					return fmt.Errorf("key %s belongs to %s, not %s", k.Sid, k.AccountSid, p.AccountSid)
				}
				if p.OutgoingApp != "" {
					app, err := st.Application(ctx, p.OutgoingApp)
					if err != nil {
						return err
					}
					if app.AccountSid != p.AccountSid {
						return fmt.Errorf("application %s belongs to another account", app.Sid)
					}
				}
				p.Secret = k.Secret
				p.Now = time.Now()
				tok, err := accesstoken.Mint(p)
				if err != nil {
					return err
				}
				if c.jsonOut {
					return c.print(map[string]any{"token": tok, "identity": p.Identity, "expires": p.Now.Add(p.TTL).UTC().Format(time.RFC3339)}, nil)
				}
				_, err = fmt.Fprintln(c.stdout, tok)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&p.AccountSid, "account", "", "account sid (default: the key's account)")
	cmd.Flags().StringVar(&p.KeySid, "key", "", "API key sid that signs the token (required)")
	cmd.Flags().StringVar(&p.Identity, "identity", "", "client identity (required)")
	cmd.Flags().BoolVar(&p.Incoming, "incoming", false, "allow incoming calls (presence as client:<identity>)")
	cmd.Flags().StringVar(&p.OutgoingApp, "outgoing-app", "", "application sid for outgoing calls")
	cmd.Flags().DurationVar(&p.TTL, "ttl", time.Hour, "lifetime, at most 24h")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("identity")
	return cmd
}
