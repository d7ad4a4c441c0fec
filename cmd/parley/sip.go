package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/server"
	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/store"
)

func (c *cli) sipCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sip", Short: "SIP domains and their users"}
	domain := &cobra.Command{Use: "domain", Short: "SIP domains: where phones register and calls are routed"}

	var account, name, voiceURL, messagingURL string
	var noRegistration bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a SIP domain for an account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if voiceURL != "" || messagingURL != "" {
				app := store.Application{}
				if err := api.ApplyApplicationParams(url.Values{"VoiceUrl": {voiceURL}, "MessagingUrl": {messagingURL}}, &app); err != nil {
					return err
				}
			}
			cfg, err := c.config(cmd)
			if err != nil {
				return err
			}
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				if _, err := st.Account(ctx, account); err != nil {
					return err
				}
				d, err := st.CreateSIPDomain(ctx, account, store.NewSIPDomain{DomainName: name, RegistrationEnabled: !noRegistration,
					VoiceURL: voiceURL, VoiceMethod: "POST", MessagingURL: messagingURL, MessagingMethod: "POST",
					ReservedNames: cfg.ReservedSIPDomainNames()})
				if err != nil {
					return err
				}
				return c.printDomain(d)
			})
		},
	}
	create.Flags().StringVar(&account, "account", "", "account sid (required)")
	create.Flags().StringVar(&name, "name", "", "domain name, e.g. pbx.example.com (required)")
	create.Flags().StringVar(&voiceURL, "voice-url", "", "URL fetched for instructions when this domain is called")
	create.Flags().StringVar(&messagingURL, "messaging-url", "", "URL told of messages to users this domain does not have")
	create.Flags().BoolVar(&noRegistration, "no-registration", false, "do not accept REGISTER for this domain")
	_ = create.MarkFlagRequired("account")
	_ = create.MarkFlagRequired("name")

	var listAccount string
	list := &cobra.Command{
		Use:   "list",
		Short: "List an account's SIP domains",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				ds, _, err := st.ListSIPDomains(ctx, listAccount, store.Page{Size: 1000})
				if err != nil {
					return err
				}
				var rows [][]string
				for _, d := range ds {
					rows = append(rows, []string{d.Sid, d.DomainName, strconv.FormatBool(d.RegistrationEnabled), d.VoiceURL})
				}
				return c.printTable(ds, []string{"SID", "DOMAIN", "REGISTRATION", "VOICE URL"}, rows)
			})
		},
	}
	list.Flags().StringVar(&listAccount, "account", "", "account sid (required)")
	_ = list.MarkFlagRequired("account")
	domain.AddCommand(create, list)

	user := &cobra.Command{Use: "user", Short: "SIP users (Digest credentials) of a domain"}
	var domainName, username, password string
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a user to a domain (in the domain's \"<domain> users\" credential list)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config(cmd)
			if err != nil {
				return err
			}
			err = c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				d, err := st.SIPDomainByName(ctx, domainName)
				if err != nil {
					return err
				}
				listName := d.DomainName + " users"
				var listSid string
				lists, _, err := st.ListSIPDomainCredentialLists(ctx, d.AccountSid, d.Sid, store.Page{Size: 1000})
				if err != nil {
					return err
				}
				for _, l := range lists {
					if l.FriendlyName == listName {
						listSid = l.Sid
					}
				}
				if listSid == "" {
					l, err := st.CreateSIPCredentialList(ctx, d.AccountSid, listName)
					if err != nil {
						return err
					}
					if err := st.MapSIPCredentialList(ctx, d.AccountSid, d.Sid, l.Sid); err != nil {
						return err
					}
					listSid = l.Sid
				}
				cr, err := st.CreateSIPCredential(ctx, d.AccountSid, listSid, username, password, realmOf(cfg.SIP.Realm))
				if err != nil {
					return err
				}
				return c.print(map[string]string{"sid": cr.Sid, "username": cr.Username, "domain": d.DomainName, "credential_list_sid": listSid},
					[][2]string{{"sid", cr.Sid}, {"user", "sip:" + cr.Username + "@" + d.DomainName}, {"credential_list_sid", listSid}})
			})
			if err != nil {
				return err
			}
			// A running server caches credential lookups: tell it.
			if cerr := server.NewControlClient(cfg.DataDir).ForgetCredentials(cmd.Context()); cerr != nil && !errors.Is(cerr, server.ErrNoServer) {
				return fmt.Errorf("user added, but the running server could not be told: %w", cerr)
			}
			return nil
		},
	}
	add.Flags().StringVar(&domainName, "domain", "", "SIP domain name (required)")
	add.Flags().StringVar(&username, "username", "", "user name (required)")
	add.Flags().StringVar(&password, "password", "", "password, 8 to 256 characters (required)")
	for _, f := range []string{"domain", "username", "password"} {
		_ = add.MarkFlagRequired(f)
	}
	user.AddCommand(add)
	cmd.AddCommand(domain, user)
	return cmd
}

// realmOf mirrors the SIP server's default realm.
func realmOf(configured string) string {
	if configured == "" {
		return "parley"
	}
	return configured
}

func (c *cli) printDomain(d store.SIPDomain) error {
	return c.print(d, [][2]string{{"sid", d.Sid}, {"domain_name", d.DomainName}, {"account_sid", d.AccountSid},
		{"sip_registration", strconv.FormatBool(d.RegistrationEnabled)}, {"voice_url", d.VoiceURL}, {"messaging_url", d.MessagingURL}})
}
