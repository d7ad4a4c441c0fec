package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSIPDomainCreateRefusesNames(t *testing.T) {
	dir := t.TempDir()
	sid := runJSON(t, dir, "account", "create", "--name", "Domains")["sid"].(string)
	for _, c := range []struct{ name, why string }{
		{"127.0.0.1", "IP address"}, {"[::1]", "IP address"}, {"localhost", "localhost"}, {"pbx.localhost", "localhost"},
		{"bad_name.example", "not a valid hostname"}, {"sip.parley.example", "server's own names"},
	} {
		var stderr bytes.Buffer
		cmd := parleyCmd(dir, "sip", "domain", "create", "--account", sid, "--name", c.name)
		cmd.Env = append(cmd.Env, "PARLEY_SIP_HOSTNAME=SIP.Parley.Example")
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), c.why) {
			t.Errorf("sip domain create --name %s: err %v, stderr %q; want refused (%s)", c.name, err, stderr.String(), c.why)
		}
	}
	run(t, dir, "sip", "domain", "create", "--account", sid, "--name", "pbx.test")
}
