package sip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/store"
)

// needPeer returns the path of a peer binary, skipping the test when it is
// missing unless PARLEY_REQUIRE_PEERS=1.
func needPeer(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s not found and PARLEY_REQUIRE_PEERS=1: run `make deps`", name)
		}
		t.Skipf("%s not installed (set PARLEY_REQUIRE_PEERS=1 to fail instead; `make deps` installs it)", name)
	}
	return p
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pc, err := net.ListenPacket("udp", l.Addr().String())
	if err != nil {
		return freePort(t)
	}
	pc.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeBaresipPort returns a port for baresip's sip_listen: baresip binds UDP
// and TCP there and TLS on the next port, so both must be free.
func freeBaresipPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		p := freePort(t)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no port pair free for baresip")
	return 0
}

func portOf(a net.Addr) int {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.Port
	case *net.TCPAddr:
		return v.Port
	}
	return 0
}

func TestSIPpRegisterDigest(t *testing.T) {
	sipp := needPeer(t, "sipp")
	e := newEnv(t, "", nil)
	scenarios, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		transport, flag, scenario, users_csv string
		users                                []string
		wantBound                            bool
	}{
		{"udp", "u1", "sipp_register_digest.xml", "sipp_users.csv", []string{"alice", "bob", "carol"}, true},
		{"tcp", "t1", "sipp_register_digest.xml", "sipp_users.csv", []string{"alice", "bob", "carol"}, true},
		{"udp", "u1", "sipp_register_wrong_password.xml", "sipp_users_wrong_password.csv", []string{"alice"}, false},
	} {
		t.Run(tc.transport+"/"+strings.TrimSuffix(tc.scenario, ".xml"), func(t *testing.T) {
			before := len(e.bindings("sip:alice@" + testDomain))
			events := e.reg.Events().Subscribe(64, func(ev presence.Event) bool { return ev.Bindings > 0 })
			defer events.Close()
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, sipp,
				"-sf", filepath.Join(scenarios, tc.scenario),
				"-inf", filepath.Join(scenarios, tc.users_csv),
				"-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)),
				"-t", tc.flag, "-m", fmt.Sprint(len(tc.users)), "-r", "10",
				"-timeout", "20s", "-timeout_error", "-max_recv_loops", "1000",
				"-trace_err", "-nostdin",
				fmt.Sprintf("127.0.0.1:%d", portOf(e.srv.Addr(tc.transport))))
			cmd.Dir = dir
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if err != nil {
				logs, _ := filepath.Glob(filepath.Join(dir, "*errors.log"))
				var errLog []byte
				for _, l := range logs {
					b, _ := os.ReadFile(l)
					errLog = append(errLog, b...)
				}
				t.Fatalf("sipp: %v\n%s\n%s", err, lastLines(out.String(), 30), errLog)
			}
			// SIPp exits (closing its TCP connection, which removes the
			// binding) right after the 200 OK, so look at the events.
			registered := map[string]bool{}
		drain:
			for {
				select {
				case ev := <-events.C:
					registered[ev.Identity] = true
				default:
					break drain
				}
			}
			for _, u := range tc.users {
				id := "sip:" + u + "@" + testDomain
				if tc.wantBound && !registered[id] {
					t.Fatalf("no registration event for %s (got %v)", id, registered)
				}
				if !tc.wantBound && (registered[id] || len(e.bindings(id)) != before) {
					t.Fatalf("binding created by a wrong password: %+v", e.bindings(id))
				}
			}
			if tc.transport == "udp" && tc.wantBound {
				for _, u := range tc.users {
					found := false
					for _, b := range e.bindings("sip:" + u + "@" + testDomain) {
						found = found || b.UserAgent == "SIPp" && b.Transport == "udp"
					}
					if !found {
						t.Fatalf("no SIPp UDP binding for %s", u)
					}
				}
			}
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestBaresipRegisterDigest(t *testing.T) {
	baresip := needPeer(t, "baresip")
	// Default challenges (MD5 only): baresip 1.x refuses a 401 that also offers SHA-256.
	e := newEnv(t, "", nil)
	ctx := context.Background()
	// baresip's account syntax cannot carry spaces in auth_pass.
	lists, _, err := e.st.ListSIPCredentialLists(ctx, e.acc.Sid, store.Page{Size: 1})
	if err != nil || len(lists) == 0 {
		t.Fatalf("lists: %v", err)
	}
	const pw = "baresip-secret-1"
	if _, err := e.st.CreateSIPCredential(ctx, e.acc.Sid, lists[0].Sid, "dave", pw, "parley"); err != nil {
		t.Fatal(err)
	}
	for _, tp := range []string{"udp", "tcp"} {
		t.Run(tp, func(t *testing.T) {
			dir := t.TempDir()
			listen := freeBaresipPort(t)
			config := fmt.Sprintf(`poll_method		epoll
sip_listen		127.0.0.1:%d
module_path		/usr/lib/baresip/modules
module_app		account.so
audio_player		nil
audio_source		nil
audio_alert		nil
`, listen)
			account := fmt.Sprintf("<sip:dave@%s;transport=%s>;auth_pass=%s;outbound=\"sip:127.0.0.1:%d;transport=%s\";regint=120\n",
				testDomain, tp, pw, portOf(e.srv.Addr(tp)), tp)
			for name, body := range map[string]string{"config": config, "accounts": account, "contacts": "", "uuid": "00000000-0000-4000-8000-00000000000" + map[string]string{"udp": "1", "tcp": "2"}[tp] + "\n"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(cctx, baresip, "-f", dir, "-t", "20")
			var out bytes.Buffer
			var mu sync.Mutex
			cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &out}, lockedWriter{&mu, &out}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Kill()
				cmd.Wait()
			}()
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				for _, b := range e.bindings("sip:dave@" + testDomain) {
					if strings.Contains(strings.ToLower(b.UserAgent), "baresip") && b.Transport == tp {
						return
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
			mu.Lock()
			output := out.String()
			mu.Unlock()
			t.Fatalf("baresip did not register over %s; bindings %+v\n%s", tp, e.bindings("sip:dave@"+testDomain), lastLines(output, 40))
		})
	}
}
