package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	"github.com/parleyhq/parley/plugins/sdk"
	"github.com/parleyhq/parley/server"
	"github.com/parleyhq/parley/server/api"
)

// partnerAdmin is what `parley partner` asks of the partners plugin; the
// plugin's client (in this process) and server.ControlClient (through a
// running server) both do it.
type partnerAdmin interface {
	CreatePartner(ctx context.Context, req *partnersv1.CreatePartnerRequest) (*partnersv1.CreatePartnerResponse, error)
	ListPartners(ctx context.Context, req *partnersv1.ListPartnersRequest) (*partnersv1.ListPartnersResponse, error)
	GetPartner(ctx context.Context, req *partnersv1.GetPartnerRequest) (*partnersv1.Partner, error)
	UpdatePartner(ctx context.Context, req *partnersv1.UpdatePartnerRequest) (*partnersv1.Partner, error)
	AddKey(ctx context.Context, req *partnersv1.AddKeyRequest) (*partnersv1.PartnerKey, error)
	RevokeKey(ctx context.Context, req *partnersv1.RevokeKeyRequest) (*partnersv1.PartnerKey, error)
}

// withPartners reaches the partners plugin for one command, like the
// limits commands reach admission: through a running server's control
// socket when one holds the data directory (so an external partners plugin
// the server runs is the one that answers), otherwise by taking the
// data-directory lock and starting the plugin here. A running server with
// partner delegation disabled runs no partners plugin: then the command
// starts one itself, beside it.
func (c *cli) withPartners(cmd *cobra.Command, fn func(ctx context.Context, p partnerAdmin) error) error {
	cfg, err := c.config(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	release, err := server.LockDataDir(cfg.DataDir)
	switch {
	case errors.Is(err, server.ErrDataDirLocked):
		err = fn(ctx, server.NewControlClient(cfg.DataDir))
		if !errors.Is(err, server.ErrPartnersDisabled) {
			return err
		}
		release = func() error { return nil }
	case err != nil:
		return err
	}
	defer release()
	name := cfg.Plugins.Use[string(sdk.KindPartners)]
	if name == "" {
		name = builtin.Partners
	}
	// Start the partners plugin alone.
	cfg.Plugins.Use = map[string]string{string(sdk.KindPartners): name}
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
		return fmt.Errorf("partners plugin: %w", err)
	}
	defer sup.Close()
	cl, err := sup.Partners(ctx)
	if err != nil {
		return fmt.Errorf("partners plugin: %w", err)
	}
	return fn(ctx, pluginPartners{cl})
}

// pluginPartners is the plugin's client as a partnerAdmin: a refusal
// becomes the plugin's own message.
type pluginPartners struct{ cl partnersv1.PartnersClient }

func statusMessage(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return errors.New(st.Message())
	}
	return err
}

func (p pluginPartners) CreatePartner(ctx context.Context, req *partnersv1.CreatePartnerRequest) (*partnersv1.CreatePartnerResponse, error) {
	res, err := p.cl.CreatePartner(ctx, req)
	return res, statusMessage(err)
}

func (p pluginPartners) ListPartners(ctx context.Context, req *partnersv1.ListPartnersRequest) (*partnersv1.ListPartnersResponse, error) {
	res, err := p.cl.ListPartners(ctx, req)
	return res, statusMessage(err)
}

func (p pluginPartners) GetPartner(ctx context.Context, req *partnersv1.GetPartnerRequest) (*partnersv1.Partner, error) {
	res, err := p.cl.GetPartner(ctx, req)
	return res, statusMessage(err)
}

func (p pluginPartners) UpdatePartner(ctx context.Context, req *partnersv1.UpdatePartnerRequest) (*partnersv1.Partner, error) {
	res, err := p.cl.UpdatePartner(ctx, req)
	return res, statusMessage(err)
}

func (p pluginPartners) AddKey(ctx context.Context, req *partnersv1.AddKeyRequest) (*partnersv1.PartnerKey, error) {
	res, err := p.cl.AddKey(ctx, req)
	return res, statusMessage(err)
}

func (p pluginPartners) RevokeKey(ctx context.Context, req *partnersv1.RevokeKeyRequest) (*partnersv1.PartnerKey, error) {
	res, err := p.cl.RevokeKey(ctx, req)
	return res, statusMessage(err)
}

func (c *cli) printPartner(p *partnersv1.Partner, secret string) error {
	res := api.NewPartnerResource(p)
	res.APISecret = secret
	var kids []string
	for _, k := range p.Keys {
		s := k.Kid + " (" + k.Type
		if k.RevokedMs != 0 {
			s += ", revoked"
		}
		kids = append(kids, s+")")
	}
	rows := [][2]string{{"sid", p.Sid}, {"friendly_name", p.FriendlyName}, {"status", p.Status},
		{"allowed_origins", strings.Join(p.AllowedOrigins, " ")}, {"features", strings.Join(p.Features, " ")}, {"keys", strings.Join(kids, ", ")}}
	if secret != "" {
		rows = append(rows, [2]string{"api_secret", secret + "   (shown once)"})
	}
	return c.print(res, rows)
}

func (c *cli) partnerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "partner", Short: "Manage partners (delegated account management and the embeddable portal)"}

	var name string
	var origins, features []string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a partner and print its sid and API secret",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withPartners(cmd, func(ctx context.Context, srv partnerAdmin) error {
				res, err := srv.CreatePartner(ctx, &partnersv1.CreatePartnerRequest{FriendlyName: name, AllowedOrigins: origins, Features: features})
				if err != nil {
					return err
				}
				return c.printPartner(res.Partner, res.ApiSecret)
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "friendly name (required)")
	create.Flags().StringSliceVar(&origins, "origin", nil, "origin allowed to frame the portal, e.g. https://app.example.com (repeatable)")
	create.Flags().StringSliceVar(&features, "feature", nil, "portal feature to enable: presence, calls, usage, triggers (repeatable; default all)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List partners",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withPartners(cmd, func(ctx context.Context, srv partnerAdmin) error {
				res, err := srv.ListPartners(ctx, &partnersv1.ListPartnersRequest{})
				if err != nil {
					return err
				}
				all := []api.PartnerResource{}
				var rows [][]string
				for _, p := range res.Partners {
					all = append(all, api.NewPartnerResource(p))
					rows = append(rows, []string{p.Sid, p.Status, p.FriendlyName, strings.Join(p.AllowedOrigins, " ")})
				}
				return c.printTable(all, []string{"SID", "STATUS", "NAME", "ORIGINS"}, rows)
			})
		},
	}

	get := &cobra.Command{
		Use:   "get SID",
		Short: "Show one partner",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withPartners(cmd, func(ctx context.Context, srv partnerAdmin) error {
				p, err := srv.GetPartner(ctx, &partnersv1.GetPartnerRequest{Sid: args[0]})
				if err != nil {
					return err
				}
				return c.printPartner(p, "")
			})
		},
	}

	var newName, newStatus string
	var newOrigins, newFeatures []string
	update := &cobra.Command{
		Use:   "update SID",
		Short: "Rename a partner, suspend or reactivate it, or change its origins or features",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &partnersv1.UpdatePartnerRequest{Sid: args[0]}
			if cmd.Flags().Changed("name") {
				req.FriendlyName = &newName
			}
			if cmd.Flags().Changed("status") {
				req.Status = &newStatus
			}
			req.SetAllowedOrigins, req.AllowedOrigins = cmd.Flags().Changed("origin"), newOrigins
			req.SetFeatures, req.Features = cmd.Flags().Changed("feature"), newFeatures
			return c.withPartners(cmd, func(ctx context.Context, srv partnerAdmin) error {
				p, err := srv.UpdatePartner(ctx, req)
				if err != nil {
					return err
				}
				return c.printPartner(p, "")
			})
		},
	}
	update.Flags().StringVar(&newName, "name", "", "new friendly name")
	update.Flags().StringVar(&newStatus, "status", "", "active or suspended")
	update.Flags().StringSliceVar(&newOrigins, "origin", nil, "replace the allowed origins (repeatable)")
	update.Flags().StringSliceVar(&newFeatures, "feature", nil, "replace the enabled features (repeatable)")

	cmd.AddCommand(create, list, get, update, c.partnerKeyCmd())
	return cmd
}

func (c *cli) partnerKeyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage a partner's assertion keys"}
	var kid, typ, pubFile, secret string
	add := &cobra.Command{
		Use:   "add PARTNER_SID",
		Short: "Add a key: --type hmac (--secret, or one is generated) or ed25519/rsa (--public-key-file PEM)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &partnersv1.AddKeyRequest{PartnerSid: args[0], Kid: kid, Type: typ}
			generated := ""
			switch typ {
			case partnersv1.KeyHMAC:
				if secret == "" {
					secret = sid.Secret(48)
					generated = secret
				}
				req.Material = []byte(secret)
			case partnersv1.KeyEd25519, partnersv1.KeyRSA:
				if pubFile == "" {
					return fmt.Errorf("--public-key-file is required for %s keys", typ)
				}
				b, err := os.ReadFile(pubFile)
				if err != nil {
					return fmt.Errorf("public key: %w", err)
				}
				req.Material = b
			default:
				return fmt.Errorf("--type %q: want hmac, ed25519 or rsa", typ)
			}
			return c.withPartners(cmd, func(ctx context.Context, srv partnerAdmin) error {
				k, err := srv.AddKey(ctx, req)
				if err != nil {
					return err
				}
				res := api.NewPartnerKeyResource(k)
				res.Secret = generated
				rows := [][2]string{{"kid", k.Kid}, {"type", k.Type}}
				if generated != "" {
					rows = append(rows, [2]string{"secret", generated + "   (shown once)"})
				}
				return c.print(res, rows)
			})
		},
	}
	add.Flags().StringVar(&kid, "kid", "", "key id, put in the assertion's kid header (required)")
	add.Flags().StringVar(&typ, "type", "", "hmac, ed25519 or rsa (required)")
	add.Flags().StringVar(&pubFile, "public-key-file", "", "PEM public key (ed25519, rsa)")
	add.Flags().StringVar(&secret, "secret", "", "HMAC secret, at least 32 bytes (default: generate one)")

	revoke := &cobra.Command{
		Use:   "revoke PARTNER_SID KID",
		Short: "Revoke a key: assertions signed with it are refused from now on",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withPartners(cmd, func(ctx context.Context, srv partnerAdmin) error {
				k, err := srv.RevokeKey(ctx, &partnersv1.RevokeKeyRequest{PartnerSid: args[0], Kid: args[1]})
				if err != nil {
					return err
				}
				return c.print(api.NewPartnerKeyResource(k), [][2]string{{"kid", k.Kid}, {"type", k.Type}, {"revoked", "yes"}})
			})
		},
	}
	cmd.AddCommand(add, revoke)
	return cmd
}
