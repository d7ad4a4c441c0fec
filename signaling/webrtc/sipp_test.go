package webrtc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSIPpCallToBrowserWithDTMF: SIPp calls alice (Digest as bob); the
// webhook's <Dial answerOnBridge><Client>alice</Client></Dial> rings a pion
// browser, which answers; the RFC 4733 digits SIPp plays from its pcaps
// arrive at the browser as dtmf frames; the browser hangs up and Parley
// BYEs SIPp (the scenario waits for that BYE).
func TestSIPpCallToBrowserWithDTMF(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_PEERS") == "1" {
			t.Fatal("sipp not installed (apt-get install sip-tester)")
		}
		t.Skip("sipp not installed")
	}
	e := newTestEnv(t, map[string]string{
		"/voice":  `<Response><Dial action="/dialed" timeout="10" answerOnBridge="true"><Client>alice</Client></Dial></Response>`,
		"/dialed": `<Response><Hangup/></Response>`,
	}, nil)
	b := newBrowser(t, e, e.token("alice", true, "", time.Hour))
	scenario, _ := filepath.Abs("../sip/testdata/sipp_call_dtmf.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, "-sf", scenario, "-s", "alice", "-key", "user", "bob", "-key", "domain", testDomain,
		"-au", "bob", "-ap", testPassword, "-i", "127.0.0.1", "-p", fmt.Sprint(freeUDP(t)), "-mi", "127.0.0.1",
		"-mp", fmt.Sprint(freeUDP(t)&^1), "-m", "1", "-l", "1", "-timeout", "25s", "-timeout_error", "-nostdin",
		e.sip.Addr("udp").String())
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	in := b.expect(TypeIncoming, 10*time.Second)
	if in.CallSid == "" || in.SDP == "" {
		t.Fatalf("incoming: %+v", in)
	}
	b.answer(in)
	for _, want := range []string{"4", "2"} {
		if f := b.expect(TypeDTMF, 10*time.Second); f.Digits != want || f.CallSid != in.CallSid {
			t.Fatalf("dtmf frame %+v, want digit %s", f, want)
		}
	}
	b.send(Frame{Type: TypeHangup, CallSid: in.CallSid})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sipp: %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("SIPp was not hung up\n%s", out.String())
	}
	waitFor(t, "dial action", func() bool { return len(e.app.got("/dialed")) == 1 })
	if d := e.app.got("/dialed")[0]; d.Get("DialCallStatus") != "completed" {
		t.Fatalf("dial action: %v", d)
	}
}

func freeUDP(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}
