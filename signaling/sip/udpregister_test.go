package sip

import "testing"

func TestUDPRegisterThroughTransactions(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.UDPRegisterTransactions = true })
	if e.srv.udpReg != nil {
		t.Fatal("stateless path enabled")
	}
	c := e.newClient("udp")
	if res := c.register("alice", testPassword, []string{"<sip:alice@127.0.0.1:6300>"}); res.StatusCode != 200 {
		t.Fatalf("register: %d %s", res.StatusCode, res.Reason)
	}
	if bs := e.bindings("sip:alice@" + testDomain); len(bs) != 1 || bs[0].Transport != "udp" {
		t.Fatalf("bindings %+v", bs)
	}
}
