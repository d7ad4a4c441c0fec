// Command allowlist is a small external admission plugin for Parley, written
// against plugins/sdk: accounts listed in its allow-list file are admitted
// without limit, every other account is refused (limit 0). See README.md.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	"github.com/parleyhq/parley/plugins/sdk"
)

const (
	name    = "allowlist"
	version = "0.1.0"
)

func main() {
	log := sdk.Logger(name)
	file := os.Getenv("ALLOWLIST_FILE")
	if file == "" {
		exe, err := os.Executable()
		if err != nil {
			log.Error("locate executable", "err", err)
			os.Exit(1)
		}
		file = exe + ".txt"
	}
	accounts, err := load(file)
	if err != nil {
		log.Error("load allow-list", "err", err) // stderr: never stdout before Serve
		os.Exit(1)
	}
	log.Info("allow-list loaded", "file", file, "accounts", len(accounts))
	sdk.ServeAdmission(&policy{allowed: accounts}, sdk.Options{Name: name, Version: version, Logger: log})
}

// load reads one account sid per line; blank lines and #comments are skipped.
func load(file string) (map[string]bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("allow-list: %w", err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			out[line] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("allow-list %s: %w", file, err)
	}
	return out, nil
}

// policy admits listed accounts without limit and refuses the others. It
// keeps no state: grants to listed accounts need no accounting.
type policy struct {
	admissionv1.UnimplementedAdmissionServer
	allowed map[string]bool
}

func (p *policy) limit(account string) int64 {
	if p.allowed[account] {
		return -1
	}
	return 0
}

func (p *policy) Acquire(_ context.Context, req *admissionv1.AcquireRequest) (*admissionv1.AcquireResponse, error) {
	if req.GetAccountSid() == "" {
		return nil, status.Error(codes.InvalidArgument, "account_sid is required")
	}
	if !p.allowed[req.GetAccountSid()] {
		return &admissionv1.AcquireResponse{Limit: 0, RetryAfterMs: 60_000}, nil
	}
	n := max(req.GetMaxCount(), req.GetMinCount(), 1)
	id := req.GetLeaseId()
	if id == "" {
		id = "allow-" + req.GetAccountSid() + "-" + req.GetResource()
	}
	return &admissionv1.AcquireResponse{Granted: true, Count: n, LeaseId: id, LeaseCount: n, Limit: -1}, nil
}

func (p *policy) Release(context.Context, *admissionv1.ReleaseRequest) (*admissionv1.ReleaseResponse, error) {
	return &admissionv1.ReleaseResponse{Found: true}, nil
}

func (p *policy) Renew(context.Context, *admissionv1.RenewRequest) (*admissionv1.RenewResponse, error) {
	return &admissionv1.RenewResponse{}, nil
}

func (p *policy) GetLimits(_ context.Context, req *admissionv1.GetLimitsRequest) (*admissionv1.GetLimitsResponse, error) {
	resp := &admissionv1.GetLimitsResponse{}
	for _, r := range []string{"api", "calls", "calls-cps", "messages"} {
		resp.Limits = append(resp.Limits, &admissionv1.Limit{Resource: r, Limit: p.limit(req.GetAccountSid())})
	}
	return resp, nil
}

func (p *policy) SetLimit(context.Context, *admissionv1.SetLimitRequest) (*admissionv1.SetLimitResponse, error) {
	return nil, status.Error(codes.Unimplemented, "allowlist: edit the allow-list file and restart the plugin")
}
