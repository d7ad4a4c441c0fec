package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/store"
)

func (c *cli) accountCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "account", Short: "Manage accounts"}

	var name, owner string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an account and print its sid and auth token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := api.CheckFriendlyName(name); err != nil {
				return err
			}
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				if owner != "" {
					parent, err := st.Account(ctx, owner)
					if err != nil {
						return err
					}
					if parent.OwnerAccountSid != "" {
						return fmt.Errorf("%s is a subaccount; subaccounts cannot own subaccounts", owner)
					}
				}
				a, err := st.CreateAccount(ctx, store.NewAccount{FriendlyName: name, OwnerAccountSid: owner})
				if err != nil {
					return err
				}
				return c.printAccount(a)
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "friendly name")
	create.Flags().StringVar(&owner, "owner", "", "owner account sid: create a subaccount")

	list := &cobra.Command{
		Use:   "list",
		Short: "List accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				var all []api.AccountResource
				var rows [][]string
				for page := 0; ; page++ {
					accts, more, err := st.ListAccounts(ctx, store.AccountFilter{}, store.Page{Page: page, Size: 500})
					if err != nil {
						return err
					}
					for _, a := range accts {
						all = append(all, api.NewAccountResource(a))
						owner := a.OwnerAccountSid
						if owner == "" {
							owner = "-"
						}
						rows = append(rows, []string{a.Sid, a.Status, owner, a.FriendlyName})
					}
					if !more {
						break
					}
				}
				return c.printTable(all, []string{"SID", "STATUS", "OWNER", "NAME"}, rows)
			})
		},
	}

	get := &cobra.Command{
		Use:   "get SID",
		Short: "Show one account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				a, err := st.Account(ctx, args[0])
				if err != nil {
					return err
				}
				return c.printAccount(a)
			})
		},
	}

	var newName, status string
	update := &cobra.Command{
		Use:   "update SID",
		Short: "Rename an account or change its status (active, suspended, closed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u store.AccountUpdate
			if cmd.Flags().Changed("name") {
				if err := api.CheckFriendlyName(newName); err != nil {
					return err
				}
				u.FriendlyName = &newName
			}
			if cmd.Flags().Changed("status") {
				if !api.ValidStatus(status) {
					return fmt.Errorf("--status %q: want active, suspended or closed", status)
				}
				u.Status = &status
			}
			return c.withStore(cmd, func(ctx context.Context, st *store.Store) error {
				a, err := st.UpdateAccount(ctx, args[0], u)
				if errors.Is(err, store.ErrClosed) {
					return fmt.Errorf("%s is closed and cannot be changed", args[0])
				}
				if err != nil {
					return err
				}
				return c.printAccount(a)
			})
		},
	}
	update.Flags().StringVar(&newName, "name", "", "new friendly name")
	update.Flags().StringVar(&status, "status", "", "new status: active, suspended or closed")

	cmd.AddCommand(create, list, get, update)
	return cmd
}

func (c *cli) printAccount(a store.Account) error {
	owner := a.OwnerAccountSid
	if owner == "" {
		owner = "-"
	}
	return c.print(api.NewAccountResource(a), [][2]string{
		{"sid", a.Sid}, {"friendly_name", a.FriendlyName}, {"status", a.Status},
		{"auth_token", a.AuthToken}, {"owner_account_sid", owner},
	})
}
