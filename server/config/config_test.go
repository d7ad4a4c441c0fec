package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "parley.yaml")
	os.WriteFile(file, []byte("data_dir: /from/file\nhttp:\n  addr: 127.0.0.1:1111\nlog:\n  level: debug\nshutdown_timeout: 7s\n"), 0o600)
	env := map[string]string{"PARLEY_CONFIG": file, "PARLEY_HTTP_ADDR": "127.0.0.1:2222", "PARLEY_LOG_FORMAT": "json"}

	tests := []struct {
		name  string
		args  []string
		check func(Config) string
	}{
		{"file beats default", nil, func(c Config) string {
			if c.DataDir != "/from/file" || c.Log.Level != "debug" || c.ShutdownTimeout != 7*time.Second {
				return "file values not applied"
			}
			return ""
		}},
		{"env beats file", nil, func(c Config) string {
			if c.HTTP.Addr != "127.0.0.1:2222" || c.Log.Format != "json" {
				return "env values not applied"
			}
			return ""
		}},
		{"flag beats env", []string{"--http-addr", "127.0.0.1:3333"}, func(c Config) string {
			if c.HTTP.Addr != "127.0.0.1:3333" {
				return "flag not applied"
			}
			return ""
		}},
		{"unset flag keeps env", []string{"--log-level", "warn"}, func(c Config) string {
			if c.HTTP.Addr != "127.0.0.1:2222" || c.Log.Level != "warn" {
				return "flag default overrode env"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			Flags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			c, err := Load(fs, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(c); msg != "" {
				t.Fatalf("%s: %+v", msg, c)
			}
		})
	}
}

func TestDefaultsAndErrors(t *testing.T) {
	c, err := Load(nil, func(string) string { return "" })
	want := Default()
	want.Plugins.Dir = filepath.Join(want.DataDir, "plugins")
	if err != nil || !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	// The plugin directory follows the data directory unless set.
	c, _ = Load(nil, func(k string) string { return map[string]string{"PARLEY_DATA_DIR": "/srv/parley"}[k] })
	if c.Plugins.Dir != "/srv/parley/plugins" {
		t.Fatalf("plugins.dir %q", c.Plugins.Dir)
	}
	// Nested sections come from the file; unknown admission resources are refused.
	dir0 := t.TempDir()
	f := filepath.Join(dir0, "adm.yaml")
	os.WriteFile(f, []byte("admission:\n  defaults:\n    api: 7\nplugins:\n  on_failure:\n    admission: closed\n"), 0o600)
	c, err = Load(nil, func(k string) string { return map[string]string{"PARLEY_CONFIG": f}[k] })
	if err != nil || c.Admission.Defaults["api"] != 7 || c.Admission.Defaults["calls"] != 50 || c.Plugins.OnFailure["admission"] != "closed" {
		t.Fatalf("nested: %v %+v %+v", err, c.Admission.Defaults, c.Plugins.OnFailure)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("htp:\n  addr: x\n"), 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	tests := []struct {
		name string
		env  map[string]string
		want string // substring of the error; "" = no error
	}{
		{"unknown key in file", map[string]string{"PARLEY_CONFIG": bad}, "field htp not found"},
		{"missing file", map[string]string{"PARLEY_CONFIG": filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"empty file is fine", map[string]string{"PARLEY_CONFIG": empty}, ""},
		{"bad duration", map[string]string{"PARLEY_SHUTDOWN_TIMEOUT": "soon"}, "PARLEY_SHUTDOWN_TIMEOUT"},
		{"bad level", map[string]string{"PARLEY_LOG_LEVEL": "loud"}, "log.level"},
		{"bad addr", map[string]string{"PARLEY_HTTP_ADDR": "nowhere"}, "http.addr"},
		{"webrtc settings", map[string]string{"PARLEY_WEBRTC_NAT_1TO1_IPS": "203.0.113.7, 198.51.100.2", "PARLEY_WEBRTC_UDP_PORT_MIN": "40000",
			"PARLEY_WEBRTC_UDP_PORT_MAX": "40100", "PARLEY_WEBRTC_STUN_URLS": "stun:stun.example.com:3478"}, ""},
		{"bad nat ip", map[string]string{"PARLEY_WEBRTC_NAT_1TO1_IPS": "203.0.113.7,not-an-ip"}, "webrtc.nat_1to1_ips"},
		{"bad webrtc ports", map[string]string{"PARLEY_WEBRTC_UDP_PORT_MIN": "5000", "PARLEY_WEBRTC_UDP_PORT_MAX": "4000"}, "webrtc.udp_port_min/max"},
		{"bad auth timeout", map[string]string{"PARLEY_WEBRTC_AUTH_TIMEOUT": "0s"}, "webrtc.auth_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(nil, func(k string) string { return tt.env[k] })
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestWebhookAllowNetworks(t *testing.T) {
	file := filepath.Join(t.TempDir(), "parley.yaml")
	os.WriteFile(file, []byte("webhooks:\n  allow_networks: [10.0.0.0/8, \"fd00::/8\"]\n"), 0o600)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
		err  string
	}{
		{"default allows nothing", nil, nil, nil, ""},
		{"file", map[string]string{"PARLEY_CONFIG": file}, nil, []string{"10.0.0.0/8", "fd00::/8"}, ""},
		{"env", map[string]string{"PARLEY_WEBHOOKS_ALLOW_NETWORKS": "127.0.0.0/8, ::1"}, nil, []string{"127.0.0.0/8", "::1"}, ""},
		{"flag beats env", map[string]string{"PARLEY_WEBHOOKS_ALLOW_NETWORKS": "10.0.0.0/8"}, []string{"--webhooks-allow-networks", "127.0.0.0/8,::1/128"}, []string{"127.0.0.0/8", "::1/128"}, ""},
		{"bad network", map[string]string{"PARLEY_WEBHOOKS_ALLOW_NETWORKS": "127.0.0.0/8,localhost"}, nil, nil, "webhooks.allow_networks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			Flags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := Load(fs, func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(c.Webhooks.AllowNetworks, tc.want) {
				t.Fatalf("allow_networks %q (%v), want %q", c.Webhooks.AllowNetworks, err, tc.want)
			}
			p, err := c.Webhooks.Policy()
			if err != nil {
				t.Fatal(err)
			}
			loopback, _ := p.Allowed(netip.MustParseAddr("127.0.0.1"))
			if want := len(tc.want) > 0 && tc.want[0] == "127.0.0.0/8"; loopback != want {
				t.Fatalf("127.0.0.1 allowed %v, want %v", loopback, want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	if EnvName("http.addr") != "PARLEY_HTTP_ADDR" || FlagName("http.addr") != "http-addr" || FlagName("data_dir") != "data-dir" {
		t.Fatal("derived names changed")
	}
}

func TestMessagingSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want func(Config) bool
	}{
		{"defaults", nil, nil, func(c Config) bool { return c.Messaging.MaxBodyBytes == 32<<10 && c.Messaging.StoreFor == 24*time.Hour }},
		{"env", map[string]string{"PARLEY_MESSAGING_STORE_FOR": "90m", "PARLEY_MESSAGING_MAX_BODY_BYTES": "1000"}, nil,
			func(c Config) bool { return c.Messaging.MaxBodyBytes == 1000 && c.Messaging.StoreFor == 90*time.Minute }},
		{"flag turns store-and-forward off", nil, []string{"--messaging-store-for", "-1s"},
			func(c Config) bool { return c.Messaging.StoreFor == -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			Flags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := Load(fs, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Fatalf("messaging config %+v", c.Messaging)
			}
		})
	}
}
