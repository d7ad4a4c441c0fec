package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
	"github.com/parleyhq/parley/plugins/sdk"
	"github.com/parleyhq/parley/store"
	"github.com/parleyhq/parley/usage"
)

// Trigger actions against the real core store and the real admission
// plugin: a crossed trigger suspends the account / lowers its limit.
func TestPlatformActions(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.CreateAccount(ctx, store.NewAccount{FriendlyName: "Runaway"})
	if err != nil {
		t.Fatal(err)
	}

	cfg := usage.DefaultConfig()
	cfg.Plugin.BackoffMin, cfg.Plugin.BackoffMax, cfg.Plugin.MaxAttempts = 50*time.Millisecond, 200*time.Millisecond, 1000
	cfg.RetryInterval = 100 * time.Millisecond
	cfg.ClaimWait = 300 * time.Millisecond
	cfg.Lease = 3 * time.Second
	cfg.CallbackTimeout = 2 * time.Second
	cfg.Holder = "host-a"
	acfg := admission.DefaultConfig()
	acfg.Holder = "h"
	aenv, err := acfg.PluginEnv(filepath.Join(dir, "admission.db"))
	if err != nil {
		t.Fatal(err)
	}
	uenv, err := cfg.Plugin.PluginEnv(filepath.Join(dir, "usage.db"))
	if err != nil {
		t.Fatal(err)
	}
	pcfg := plugins.DefaultConfig()
	pcfg.Dir = filepath.Join(dir, "plugins")
	pcfg.Use = map[string]string{string(sdk.KindAdmission): builtin.Admission, string(sdk.KindUsage): builtin.Usage}
	cat, err := plugins.NewCatalog(pcfg, builtin.Specs(), plugins.Command{Path: os.Args[0], Args: []string{"plugin", "serve"}},
		map[string][]string{builtin.Admission: aenv, builtin.Usage: uenv})
	if err != nil {
		t.Fatal(err)
	}
	sup, err := plugins.NewSupervisor(pcfg, cat, plugins.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sup.Start(sctx); err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	adm, err := admission.NewClient(sup, acfg, admission.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	adm.Start(ctx)
	defer adm.Close(ctx)

	acts := platformActions{Store: st, Limits: adm}
	// Direct: idempotent and only tightening.
	if err := acts.LimitAdmission(ctx, a.Sid, "calls", 5); err != nil {
		t.Fatal(err)
	}
	if err := acts.LimitAdmission(ctx, a.Sid, "calls", 9); err != nil { // looser: no change
		t.Fatal(err)
	}
	if err := acts.LimitAdmission(ctx, a.Sid, "pizza", 1); err == nil {
		t.Fatal("unknown resource accepted")
	}
	limit := func(r admission.Resource) int64 {
		ls, err := adm.Limits(ctx, a.Sid)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Resource == r {
				return l.Limit
			}
		}
		return -2
	}
	if got := limit(admission.ResourceCalls); got != 5 {
		t.Fatalf("calls limit %d, want 5", got)
	}

	// Through a fired trigger and the deliverer.
	pub, err := usage.NewPublisher(sup, cfg, usage.PublisherOptions{SpoolDir: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	pub.Start()
	defer pub.Close(ctx)
	del, err := usage.NewDeliverer(sup, cfg, usage.DelivererOptions{Accounts: storeAccounts{Store: st}, Actions: acts})
	if err != nil {
		t.Fatal(err)
	}
	del.Start()
	defer del.Close()
	cli := usage.NewClient(sup, 5*time.Second)
	for _, tr := range []usage.Trigger{
		{AccountSid: a.Sid, UsageCategory: usage.Calls, TriggerValue: "2", TriggerBy: "count", Action: usagev1.ActionLimitAdmission, ActionResource: "calls", ActionLimit: 1},
		{AccountSid: a.Sid, UsageCategory: usage.Calls, TriggerValue: "3", TriggerBy: "count", Action: usagev1.ActionSuspendAccount},
	} {
		if _, err := cli.CreateTrigger(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	for _, sid := range []string{"CA1", "CA2"} {
		_ = pub.PublishAll(usage.CallEnded(a.Sid, sid, "inbound", "sip", time.Minute, time.Now()))
	}
	waitForAction(t, 5*time.Second, "limit lowered to 1", func() bool { return limit(admission.ResourceCalls) == 1 })
	if got, _ := st.Account(ctx, a.Sid); got.Status != store.StatusActive {
		t.Fatalf("suspended before its trigger: %s", got.Status)
	}
	_ = pub.PublishAll(usage.CallEnded(a.Sid, "CA3", "inbound", "sip", time.Minute, time.Now()))
	waitForAction(t, 5*time.Second, "account suspended", func() bool {
		got, err := st.Account(ctx, a.Sid)
		return err == nil && got.Status == store.StatusSuspended
	})
	if err := acts.SuspendAccount(ctx, a.Sid); err != nil { // again: no-op
		t.Fatal(err)
	}
	if tok, err := (storeAccounts{Store: st}).AuthToken(ctx, a.Sid); err != nil || tok != a.AuthToken {
		t.Fatalf("auth token %q %v", tok, err)
	}
}

// waitForAction polls cond until it holds or the timeout passes.
func waitForAction(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
