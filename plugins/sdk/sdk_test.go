package sdk_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
	"github.com/parleyhq/parley/plugins/sdk"
)

const modeEnv = "PARLEY_SDK_TEST_MODE"

type nopAdmission struct {
	admissionv1.UnimplementedAdmissionServer
}

// TestMain plays two extra roles for the watchdog test: "middle", a host
// that starts a plugin without Pdeathsig and reports its PID, and "plugin".
func TestMain(m *testing.M) {
	switch os.Getenv(modeEnv) {
	case "plugin":
		sdk.ServeAdmission(nopAdmission{}, sdk.Options{Name: "nop", Version: "0", ParentCheck: 50 * time.Millisecond})
		os.Exit(0)
	case "middle":
		hs := sdk.Handshake()
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), modeEnv+"=plugin", hs.MagicCookieKey+"="+hs.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS="+strconv.Itoa(sdk.ProtocolVersion))
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("PID=%d\n", cmd.Process.Pid)
		select {}
	}
	os.Exit(m.Run())
}

// A plugin whose host dies exits on its own (parent-PID watchdog), even
// without the host's Pdeathsig.
func TestWatchdogExitsWhenHostDies(t *testing.T) {
	middle := exec.Command(os.Args[0])
	middle.Env = append(os.Environ(), modeEnv+"=middle")
	out, err := middle.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := middle.Start(); err != nil {
		t.Fatal(err)
	}
	defer middle.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "PID=")))
	if err != nil {
		t.Fatalf("middle said %q", line)
	}
	time.Sleep(200 * time.Millisecond)
	if gone(pid) {
		t.Fatal("plugin not running before its host dies")
	}
	middle.Process.Signal(syscall.SIGKILL)
	middle.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("plugin %d outlived its host", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] == "Z"
}

func TestCheckInfo(t *testing.T) {
	tests := []struct {
		name     string
		kind     sdk.Kind
		gotKind  string
		versions []int32
		ok       bool
	}{
		{"match", sdk.KindAdmission, "admission", []int32{2}, true},
		{"several versions", sdk.KindUsage, "usage", []int32{3, 1, 2}, true},
		{"wrong kind", sdk.KindAdmission, "usage", []int32{2}, false},
		{"no common version", sdk.KindPartners, "partners", []int32{1}, false},
		{"no versions", sdk.KindPartners, "partners", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := sdk.CheckInfo(tc.kind, tc.gotKind, tc.versions); (err == nil) != tc.ok {
				t.Fatalf("CheckInfo = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestKindsTable(t *testing.T) {
	if sdk.ProtocolVersion != 2 {
		t.Fatalf("protocol version %d: the PluginInfo service is protocol 2", sdk.ProtocolVersion)
	}
	for _, k := range sdk.Kinds() {
		if !k.Valid() {
			t.Fatal(k)
		}
		if _, ok := sdk.HostPluginSets()[sdk.ProtocolVersion][string(k)]; !ok {
			t.Fatalf("host plugin set lacks %s", k)
		}
	}
	if sdk.Kind("billing").Valid() {
		t.Fatal("unknown kind valid")
	}
}

// Serve refuses, before serving anything, a kind it does not know and an
// implementation of another kind's service.
func TestServeRefusesMismatch(t *testing.T) {
	tests := []struct {
		name string
		kind sdk.Kind
		impl any
	}{
		{"unknown kind", "billing", nopAdmission{}},
		{"admission impl as usage", sdk.KindUsage, nopAdmission{}},
		{"usage impl as partners", sdk.KindPartners, usagev1.UnimplementedUsageServer{}},
		{"no impl", sdk.KindAdmission, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := sdk.Serve(tc.kind, tc.impl, sdk.Options{Name: "x", ParentCheck: -1}); err == nil {
				t.Fatal("Serve accepted it")
			}
		})
	}
}
