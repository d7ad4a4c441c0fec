// Package config holds Parley's settings and loads them with this precedence:
// command-line flags > PARLEY_* environment variables > YAML config file >
// built-in defaults.
//
// Every setting is declared once, in [Config.settings], by its dotted YAML
// path; its environment variable and flag names derive from that path
// (http.addr → PARLEY_HTTP_ADDR and --http-addr).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/partners"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/messaging"
	"github.com/parleyhq/parley/signaling/sip"
	"github.com/parleyhq/parley/usage"
)

// Config is the whole of Parley's configuration.
type Config struct {
	DataDir         string           `yaml:"data_dir"`
	PublicURL       string           `yaml:"public_url"`
	ShutdownTimeout time.Duration    `yaml:"shutdown_timeout"`
	HTTP            HTTP             `yaml:"http"`
	Log             Log              `yaml:"log"`
	Plugins         plugins.Config   `yaml:"plugins"`
	Admission       admission.Config `yaml:"admission"`
	SIP             sip.Config       `yaml:"sip"`
	Media           Media            `yaml:"media"`
	Calls           Calls            `yaml:"calls"`
	Webhooks        Webhooks         `yaml:"webhooks"`
	WebRTC          WebRTC           `yaml:"webrtc"`
	Usage           usage.Config     `yaml:"usage"`
	Messaging       messaging.Config `yaml:"messaging"`
	Partners        partners.Config  `yaml:"partners"`
}

// Media configures anchored RTP.
type Media struct {
	// Address is bound by RTP endpoints and put in SDP. Default: the address
	// the SIP server advertises.
	Address    string `yaml:"address"`
	RTPPortMin int    `yaml:"rtp_port_min"`
	RTPPortMax int    `yaml:"rtp_port_max"`
}

// WebRTC configures the browser gateway (signaling/webrtc).
type WebRTC struct {
	// NAT1To1IPs: comma-separated public IPs put in ICE host candidates
	// instead of the local ones (a server behind 1:1 NAT).
	NAT1To1IPs string `yaml:"nat_1to1_ips"`
	// STUNURLs and TURNURLs: comma-separated stun:/turn: URLs handed to clients.
	STUNURLs       string        `yaml:"stun_urls"`
	TURNURLs       string        `yaml:"turn_urls"`
	TURNUsername   string        `yaml:"turn_username"`
	TURNCredential string        `yaml:"turn_credential"`
	UDPPortMin     int           `yaml:"udp_port_min"`
	UDPPortMax     int           `yaml:"udp_port_max"`
	AuthTimeout    time.Duration `yaml:"auth_timeout"`
}

// List splits a comma-separated setting, dropping empty items.
func List(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Calls configures the call engine.
type Calls struct {
	// TTSCommand speaks <Say>: argv with {out}, {language}, {voice} and
	// {text} (the text goes to stdin when {text} is absent).
	TTSCommand     []string      `yaml:"tts_command"`
	WebhookTimeout time.Duration `yaml:"webhook_timeout"`
}

// Webhooks configures the egress policy of every fetch of a tenant URL
// (voice, fallback and status callbacks, messaging, usage triggers, <Play>).
type Webhooks struct {
	// AllowNetworks are CIDRs tenant URLs may reach although the policy
	// refuses them by default (loopback, private, link-local, …), e.g.
	// 127.0.0.0/8 for an application on the same host. Cloud metadata
	// addresses stay refused.
	AllowNetworks []string `yaml:"allow_networks"`
}

// Policy builds the egress policy these settings describe.
func (w Webhooks) Policy() (*webhook.Policy, error) {
	allow, err := webhook.ParseNetworks(w.AllowNetworks)
	if err != nil {
		return nil, fmt.Errorf("webhooks.allow_networks: %w", err)
	}
	return webhook.NewPolicy(webhook.PolicyOptions{Allow: allow}), nil
}

// HTTP configures the REST API listener.
type HTTP struct {
	Addr string `yaml:"addr"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto (text on a terminal, JSON otherwise), text, json
}

// Default returns the embedded defaults: everything needed to run with no
// config at all.
func Default() Config {
	return Config{
		DataDir:         "./parley-data",
		ShutdownTimeout: 20 * time.Second,
		HTTP:            HTTP{Addr: "127.0.0.1:8080"},
		Log:             Log{Level: "info", Format: "auto"},
		Plugins:         pluginDefaults(),
		Admission:       admission.DefaultConfig(),
		SIP:             sip.DefaultConfig(),
		Media:           Media{RTPPortMin: 10000, RTPPortMax: 20000},
		Calls:           Calls{TTSCommand: calls.DefaultTTSCommand, WebhookTimeout: 10 * time.Second},
		WebRTC:          WebRTC{AuthTimeout: 10 * time.Second},
		Usage:           usage.DefaultConfig(),
		Messaging:       messaging.DefaultConfig(),
		Partners:        partners.DefaultConfig(),
	}
}

// pluginDefaults leaves the plugin directory empty so that Load can put it
// under the data directory, wherever that ends up.
func pluginDefaults() plugins.Config {
	p := plugins.DefaultConfig()
	p.Dir = ""
	p.Use["usage"] = "usage"       // the built-in usage-trigger plugin serves its kind
	p.Use["partners"] = "partners" // and the built-in partners plugin serves partner delegation
	return p
}

type setting struct {
	key   string // dotted YAML path
	usage string
	ptr   any // *string, *int, *bool, *time.Duration or *[]string (comma-separated in env and flags)
}

func (c *Config) settings() []setting {
	return []setting{
		{"data_dir", "directory for the database and other state", &c.DataDir},
		{"public_url", "base URL clients use to reach this server (default: http://<http.addr>)", &c.PublicURL},
		{"shutdown_timeout", "how long a graceful shutdown may take", &c.ShutdownTimeout},
		{"http.addr", "REST API listen address", &c.HTTP.Addr},
		{"log.level", "log level: debug, info, warn, error", &c.Log.Level},
		{"log.format", "log format: auto, text, json", &c.Log.Format},
		{"plugins.dir", "directory of external policy plugins (default: <data_dir>/plugins)", &c.Plugins.Dir},
		{"sip.udp", "SIP UDP listen address (empty disables)", &c.SIP.UDP},
		{"sip.tcp", "SIP TCP listen address (empty disables)", &c.SIP.TCP},
		{"sip.tls", "SIP TLS listen address (empty disables)", &c.SIP.TLS},
		{"sip.ws", "SIP WebSocket listen address (empty disables)", &c.SIP.WS},
		{"sip.wss", "SIP secure WebSocket listen address (empty disables)", &c.SIP.WSS},
		{"sip.hostname", "host put in Via and Contact of requests Parley sends (default: the listener's address)", &c.SIP.Hostname},
		{"sip.trunk.uri", "SIP carrier that <Dial><Number> goes through, e.g. sip:carrier.example:5060;transport=tcp (empty: numbers cannot be dialled)", &c.SIP.Trunk.URI},
		{"sip.trunk.username", "username for the carrier's Digest challenge", &c.SIP.Trunk.Username},
		{"sip.trunk.password", "password for the carrier's Digest challenge", &c.SIP.Trunk.Password},
		{"sip.trunk.inbound_sources", "carrier addresses (comma-separated IPs or CIDRs) whose INVITEs reach incoming numbers without authentication", &c.SIP.Trunk.InboundSources},
		{"media.address", "RTP address bound and advertised in SDP (default: the SIP address)", &c.Media.Address},
		{"media.rtp_port_min", "lowest RTP port", &c.Media.RTPPortMin},
		{"media.rtp_port_max", "highest RTP port", &c.Media.RTPPortMax},
		{"calls.webhook_timeout", "how long an instruction fetch may take", &c.Calls.WebhookTimeout},
		{"webhooks.allow_networks", "networks (comma-separated CIDRs) that tenant URLs may reach although refused by default, e.g. 127.0.0.0/8 for an application on this host", &c.Webhooks.AllowNetworks},
		{"messaging.max_body_bytes", "largest message body accepted (SIP 413, REST 400 above it)", &c.Messaging.MaxBodyBytes},
		{"messaging.store_for", "how long a message to an offline client is kept for delivery on its next registration (negative: not stored, SIP 480)", &c.Messaging.StoreFor},
		{"partners.operator_token", "enables operator partner management over REST (Basic operator:<token>)", &c.Partners.OperatorToken},
		{"partners.session_ttl", "how long a portal session lasts", &c.Partners.SessionTTL},
		{"partners.url_ttl", "how long a single-use portal URL stays valid (≤ 60s)", &c.Partners.URLTTL},
		{"partners.skew", "clock skew tolerated on partner assertions", &c.Partners.Skew},
		{"webrtc.nat_1to1_ips", "public IPs (comma-separated) advertised in browsers' ICE host candidates (1:1 NAT)", &c.WebRTC.NAT1To1IPs},
		{"webrtc.stun_urls", "STUN URLs (comma-separated) handed to browser clients", &c.WebRTC.STUNURLs},
		{"webrtc.turn_urls", "TURN URLs (comma-separated) handed to browser clients", &c.WebRTC.TURNURLs},
		{"webrtc.turn_username", "TURN username handed to browser clients", &c.WebRTC.TURNUsername},
		{"webrtc.turn_credential", "TURN credential handed to browser clients", &c.WebRTC.TURNCredential},
		{"webrtc.udp_port_min", "lowest UDP port for browser media (0: ephemeral)", &c.WebRTC.UDPPortMin},
		{"webrtc.udp_port_max", "highest UDP port for browser media (0: ephemeral)", &c.WebRTC.UDPPortMax},
		{"webrtc.auth_timeout", "how long a browser socket may stay unregistered", &c.WebRTC.AuthTimeout},
	}
}

// EnvName is the environment variable for a dotted key.
func EnvName(key string) string {
	return "PARLEY_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// FlagName is the command-line flag for a dotted key.
func FlagName(key string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(key)
}

// Flags registers one flag per setting (plus --config) on fs. The flag
// defaults shown in help are the embedded defaults; only flags the user sets
// take effect in Load.
func Flags(fs *pflag.FlagSet) {
	d := Default()
	fs.String("config", "", "YAML config file (env PARLEY_CONFIG)")
	for _, s := range d.settings() {
		usage := fmt.Sprintf("%s (env %s)", s.usage, EnvName(s.key))
		switch p := s.ptr.(type) {
		case *string:
			fs.String(FlagName(s.key), *p, usage)
		case *int:
			fs.Int(FlagName(s.key), *p, usage)
		case *bool:
			fs.Bool(FlagName(s.key), *p, usage)
		case *time.Duration:
			fs.Duration(FlagName(s.key), *p, usage)
		case *[]string:
			fs.StringSlice(FlagName(s.key), *p, usage)
		}
	}
}

// Load builds the configuration from defaults, the config file (from --config
// or PARLEY_CONFIG), the environment (getenv) and the flags that were set on fs
// (fs may be nil).
func Load(fs *pflag.FlagSet, getenv func(string) string) (Config, error) {
	c := Default()
	file := getenv("PARLEY_CONFIG")
	if fs != nil {
		if f := fs.Lookup("config"); f != nil && f.Changed {
			file = f.Value.String()
		}
	}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return Config{}, fmt.Errorf("config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	for _, s := range c.settings() {
		name := EnvName(s.key)
		if v := getenv(name); v != "" {
			if err := set(s.ptr, v); err != nil {
				return Config{}, fmt.Errorf("environment %s: %w", name, err)
			}
		}
	}
	if fs != nil {
		for _, s := range c.settings() {
			f := fs.Lookup(FlagName(s.key))
			if f == nil || !f.Changed {
				continue
			}
			v := f.Value.String()
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				v = strings.Join(sv.GetSlice(), ",")
			}
			if err := set(s.ptr, v); err != nil {
				return Config{}, fmt.Errorf("flag --%s: %w", f.Name, err)
			}
		}
	}
	if c.Plugins.Dir == "" {
		c.Plugins.Dir = filepath.Join(c.DataDir, "plugins")
	}
	return c, c.Validate()
}

func set(ptr any, v string) error {
	switch p := ptr.(type) {
	case *string:
		*p = v
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 30s or 5m", v)
		}
		*p = d
	case *[]string:
		*p = List(v)
	default:
		return fmt.Errorf("unsupported setting type %T", ptr)
	}
	return nil
}

// Validate checks values that would otherwise fail later and less clearly.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir must not be empty"))
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr %q: %w", c.HTTP.Addr, err))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: want auto, text or json", c.Log.Format))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout %s must be positive", c.ShutdownTimeout))
	}
	if err := c.Plugins.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("plugins: %w", err))
	}
	if err := c.Admission.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("admission: %w", err))
	}
	if err := c.Usage.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("usage: %w", err))
	}
	if err := c.Partners.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Media.Address != "" {
		if _, err := netip.ParseAddr(c.Media.Address); err != nil {
			errs = append(errs, fmt.Errorf("media.address %q: %w", c.Media.Address, err))
		}
	}
	if c.Media.RTPPortMin < 1024 || c.Media.RTPPortMax > 65535 || c.Media.RTPPortMax-c.Media.RTPPortMin < 3 {
		errs = append(errs, fmt.Errorf("media.rtp_port_min/max %d-%d: want 1024 ≤ min < max ≤ 65535", c.Media.RTPPortMin, c.Media.RTPPortMax))
	}
	for _, ip := range List(c.WebRTC.NAT1To1IPs) {
		if _, err := netip.ParseAddr(ip); err != nil {
			errs = append(errs, fmt.Errorf("webrtc.nat_1to1_ips %q: %w", ip, err))
		}
	}
	if w := c.WebRTC; (w.UDPPortMin != 0 || w.UDPPortMax != 0) && (w.UDPPortMin < 1024 || w.UDPPortMax > 65535 || w.UDPPortMax < w.UDPPortMin) {
		errs = append(errs, fmt.Errorf("webrtc.udp_port_min/max %d-%d: want 1024 ≤ min ≤ max ≤ 65535", w.UDPPortMin, w.UDPPortMax))
	}
	if c.WebRTC.AuthTimeout <= 0 {
		errs = append(errs, fmt.Errorf("webrtc.auth_timeout %s must be positive", c.WebRTC.AuthTimeout))
	}
	if _, err := webhook.ParseNetworks(c.Webhooks.AllowNetworks); err != nil {
		errs = append(errs, fmt.Errorf("webhooks.allow_networks: %w", err))
	}
	if c.Calls.WebhookTimeout <= 0 {
		errs = append(errs, fmt.Errorf("calls.webhook_timeout %s must be positive", c.Calls.WebhookTimeout))
	}
	return errors.Join(errs...)
}

// ReservedSIPDomainNames returns the server's own names, which no account may
// claim as a SIP domain: sip.hostname, public_url's host and media.address
// (IP literals among them are refused as domain names anyway).
func (c Config) ReservedSIPDomainNames() []string {
	var names []string
	for _, h := range []string{c.SIP.Hostname, c.Media.Address} {
		if h != "" {
			names = append(names, h)
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err == nil && u.Hostname() != "" {
			names = append(names, u.Hostname())
		}
	}
	return names
}
