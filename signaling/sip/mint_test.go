package sip

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/presence/accesstoken"
)

func mintWith(t *testing.T, e *env, keySid, secret, identity string, incoming bool, ttl time.Duration) string {
	t.Helper()
	tok, err := accesstoken.Mint(accesstoken.MintParams{AccountSid: e.acc.Sid, KeySid: keySid, Secret: secret,
		Identity: identity, Incoming: incoming, TTL: ttl, Now: e.clk.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
