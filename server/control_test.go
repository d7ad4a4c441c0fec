package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
)

// `parley partner` beside a running server goes through the control socket
// to the server's own partners plugin: what it creates, the server's
// partner client sees; refusals carry the plugin's message.
func TestControlPartners(t *testing.T) {
	s, _ := partnerServer(t)
	ctx := context.Background()
	cc := NewControlClient(s.cfg.DataDir)

	res, err := cc.CreatePartner(ctx, &partnersv1.CreatePartnerRequest{FriendlyName: "Acme", AllowedOrigins: []string{"https://app.acme.test"}})
	if err != nil || !strings.HasPrefix(res.GetPartner().GetSid(), "PN") || res.GetApiSecret() == "" {
		t.Fatalf("create: %v %v", res, err)
	}
	sid := res.GetPartner().GetSid()
	if p, err := s.partners.Partner(ctx, sid); err != nil || p.GetFriendlyName() != "Acme" {
		t.Fatalf("the server's plugin does not know the partner: %v %v", p, err)
	}
	if k, err := cc.AddKey(ctx, &partnersv1.AddKeyRequest{PartnerSid: sid, Kid: "h1", Type: partnersv1.KeyHMAC, Material: []byte(strings.Repeat("s", 32))}); err != nil || k.GetKid() != "h1" {
		t.Fatalf("add key: %v %v", k, err)
	}
	if k, err := cc.RevokeKey(ctx, &partnersv1.RevokeKeyRequest{PartnerSid: sid, Kid: "h1"}); err != nil || k.GetRevokedMs() == 0 {
		t.Fatalf("revoke key: %v %v", k, err)
	}
	st := partnersv1.StatusSuspended
	if p, err := cc.UpdatePartner(ctx, &partnersv1.UpdatePartnerRequest{Sid: sid, Status: &st}); err != nil || p.GetStatus() != st {
		t.Fatalf("update: %v %v", p, err)
	}
	if p, err := cc.GetPartner(ctx, &partnersv1.GetPartnerRequest{Sid: sid}); err != nil || p.GetStatus() != st || len(p.GetKeys()) != 1 {
		t.Fatalf("get: %v %v", p, err)
	}
	if l, err := cc.ListPartners(ctx, &partnersv1.ListPartnersRequest{}); err != nil || len(l.GetPartners()) != 1 {
		t.Fatalf("list: %v %v", l, err)
	}
	_, err = cc.CreatePartner(ctx, &partnersv1.CreatePartnerRequest{FriendlyName: "Bad", AllowedOrigins: []string{"https://x.test/path"}})
	if err == nil || !strings.Contains(err.Error(), "not an origin") {
		t.Fatalf("bad origin: %v", err)
	}
	if _, err := cc.GetPartner(ctx, &partnersv1.GetPartnerRequest{Sid: "PN00000000000000000000000000000000"}); err == nil {
		t.Fatal("unknown partner found")
	}
}

// A server with partner delegation disabled says so, and `parley partner`
// then starts the plugin itself.
func TestControlPartnersDisabled(t *testing.T) {
	cfg := testConfig(t)
	cfg.Plugins.Use["partners"] = ""
	s, _ := started(t, cfg)
	_, err := NewControlClient(s.cfg.DataDir).ListPartners(context.Background(), &partnersv1.ListPartnersRequest{})
	if !errors.Is(err, ErrPartnersDisabled) {
		t.Fatalf("got %v, want ErrPartnersDisabled", err)
	}
}
