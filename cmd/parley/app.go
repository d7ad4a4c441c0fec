package main

import (
	"context"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/store"
)

func (c *cli) appCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "app", Aliases: []string{"application"}, Short: "Manage applications (AP…): the webhooks of calls and messages"}

	var account string
	// Each flag maps to the REST parameter of the same meaning, so the CLI and
	// the API validate alike.
	flagParams := [][3]string{
		{"name", "FriendlyName", "friendly name"},
		{"voice-url", "VoiceUrl", "URL fetched for call instructions"},
		{"voice-method", "VoiceMethod", "GET or POST"},
		{"voice-fallback-url", "VoiceFallbackUrl", "URL used when the voice URL fails"},
		{"status-callback", "StatusCallback", "URL told of call status changes"},
		{"messaging-url", "MessagingUrl", "URL told of inbound messages"},
	}
	values := make([]string, len(flagParams))
	params := func(cmd *cobra.Command) url.Values {
		v := url.Values{}
		for i, fp := range flagParams {
			if cmd.Flags().Changed(fp[0]) {
				v.Set(fp[1], values[i])
			}
		}
		return v
	}
	addFlags := func(cmd *cobra.Command) {
		for i, fp := range flagParams {
			cmd.Flags().StringVar(&values[i], fp[0], "", fp[2])
		}
	}

	create := &cobra.Command{
		Use:   "create",
		Short: "Create an application",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			app := store.Application{AccountSid: account}
			if err := api.ApplyApplicationParams(params(cmd), &app); err != nil {
				return err
			}
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				if _, err := st.Account(ctx, account); err != nil {
					return err
				}
				app, err := st.CreateApplication(ctx, app)
				if err != nil {
					return err
				}
				return c.printApp(app)
			})
		},
	}
	create.Flags().StringVar(&account, "account", "", "account sid (required)")
	_ = create.MarkFlagRequired("account")
	addFlags(create)

	update := &cobra.Command{
		Use:   "update SID",
		Short: "Change an application",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				app, err := st.Application(ctx, args[0])
				if err != nil {
					return err
				}
				if err := api.ApplyApplicationParams(params(cmd), &app); err != nil {
					return err
				}
				if app, err = st.UpdateApplication(ctx, app); err != nil {
					return err
				}
				return c.printApp(app)
			})
		},
	}
	addFlags(update)

	var listAccount string
	list := &cobra.Command{
		Use:   "list",
		Short: "List an account's applications",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				apps, _, err := st.ListApplications(ctx, listAccount, "", store.Page{Size: 1000})
				if err != nil {
					return err
				}
				out := make([]api.ApplicationResource, len(apps))
				var rows [][]string
				for i, a := range apps {
					out[i] = api.NewApplicationResource(a)
					rows = append(rows, []string{a.Sid, a.FriendlyName, a.VoiceURL})
				}
				return c.printTable(out, []string{"SID", "NAME", "VOICE URL"}, rows)
			})
		},
	}
	list.Flags().StringVar(&listAccount, "account", "", "account sid (required)")
	_ = list.MarkFlagRequired("account")

	del := &cobra.Command{
		Use:   "delete SID",
		Short: "Delete an application",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				if err := st.DeleteApplication(ctx, args[0]); err != nil {
					return err
				}
				return c.print(map[string]string{"sid": args[0], "status": "deleted"}, [][2]string{{"deleted", args[0]}})
			})
		},
	}
	cmd.AddCommand(create, update, list, del)
	return cmd
}

func (c *cli) printApp(a store.Application) error {
	return c.print(api.NewApplicationResource(a), [][2]string{
		{"sid", a.Sid}, {"account_sid", a.AccountSid}, {"friendly_name", a.FriendlyName},
		{"voice_url", a.VoiceURL}, {"voice_fallback_url", a.VoiceFallbackURL},
		{"status_callback", a.StatusCallback}, {"messaging_url", a.MessagingURL},
	})
}
