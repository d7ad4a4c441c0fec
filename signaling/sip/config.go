package sip

import (
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/signaling/sip/registrar"
	"github.com/parleyhq/parley/signaling/sip/sipauth"
)

// Config configures the SIP server. Addresses are host:port; an empty
// address disables that transport. The zero value is not useful: start from
// DefaultConfig.
type Config struct {
	UDP string `yaml:"udp"` // default ":5060"
	TCP string `yaml:"tcp"` // default ":5060"
	TLS string `yaml:"tls"` // default ":5061"
	WS  string `yaml:"ws"`  // default ":5066"
	WSS string `yaml:"wss"` // default ":5067"

	// CertFile and KeyFile hold the PEM certificate and key for TLS and WSS.
	// When both are empty a self-signed certificate is generated at start
	// (with a warning): fine for tests, not for phones that verify.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`

	// Hostname is put in the Via and Contact of requests Parley sends
	// (NOTIFY, requests to bindings). Default: the listener's address.
	Hostname string `yaml:"hostname"`
	// UserAgent is sent in the Server and User-Agent headers.
	UserAgent string `yaml:"user_agent"`

	// Realm is the Digest realm. SIP credential HA1 values are computed with
	// it, so changing it invalidates stored credentials.
	Realm string `yaml:"realm"`
	// DigestAlgorithms lists the challenges sent, in order of preference
	// (RFC 8760); clients use the first they support. Default: MD5 only,
	// because libre-based clients (baresip 1.x) fail to register at all when
	// a 401 carries a SHA-256 challenge. Add "SHA-256" when your clients
	// support it; SHA-256 responses are accepted either way.
	DigestAlgorithms []string `yaml:"digest_algorithms"`
	// NonceTTL is how long a Digest nonce may be used (default 5m); after
	// that the client is told stale=true.
	NonceTTL time.Duration `yaml:"nonce_ttl"`
	// AuthFailures failed authentications per source IP are allowed per
	// AuthFailureWindow; then the source gets 403 until the bucket refills.
	// Negative disables the limit. Default 20 per minute.
	AuthFailures      int           `yaml:"auth_failures"`
	AuthFailureWindow time.Duration `yaml:"auth_failure_window"`

	// Registration intervals in seconds.
	MinExpires     int `yaml:"min_expires"`     // default 60; shorter → 423
	MaxExpires     int `yaml:"max_expires"`     // default 3600; longer is shortened
	DefaultExpires int `yaml:"default_expires"` // default 3600, when the client gives none

	// Subscription intervals for the presence event package, in seconds.
	MinSubscribeExpires     int `yaml:"min_subscribe_expires"`     // default 60
	MaxSubscribeExpires     int `yaml:"max_subscribe_expires"`     // default 3600
	DefaultSubscribeExpires int `yaml:"default_subscribe_expires"` // default 3600

	// CredentialCacheTTL is how long a Digest credential lookup (or a
	// definite miss) is reused (default 30s; negative disables the cache).
	// Server.ForgetCredentials clears it at once.
	CredentialCacheTTL time.Duration `yaml:"credential_cache_ttl"`
	// CredentialCacheSize bounds the cache (default 200000 entries).
	CredentialCacheSize int `yaml:"credential_cache_size"`
	// CredentialIndexSize bounds the in-memory credential index: Digest
	// credentials of whole SIP domains held in memory (about 250 bytes
	// each), refreshed within CredentialCacheTTL and at once by
	// Server.ForgetCredentials (default 1000000; negative disables it; a
	// domain that does not fit is looked up in the database as before).
	CredentialIndexSize int `yaml:"credential_index_size"`

	// UDPRegisterTransactions sends UDP REGISTERs through sipgo's transaction
	// layer instead of the stateless path (package udpreg); the stateless
	// path is the default because it needs a fraction of the memory.
	UDPRegisterTransactions bool `yaml:"udp_register_transactions"`

	// UDPReadBuffer is the UDP socket's receive buffer in bytes (default
	// 4 MiB; the kernel caps it at net.core.rmem_max, and Linux's default
	// of about 200 KiB drops datagrams when the reader is descheduled for
	// a few milliseconds under load). Negative keeps the system default.
	UDPReadBuffer int `yaml:"udp_read_buffer"`

	// HandshakeTimeout bounds a TLS handshake and a WebSocket upgrade.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`

	// Trunk is the SIP carrier for numbers (see Trunk).
	Trunk Trunk `yaml:"trunk"`
}

// The Digest algorithms DigestAlgorithms may list.
const (
	AlgMD5    = sipauth.AlgMD5
	AlgSHA256 = sipauth.AlgSHA256
)

// DefaultConfig returns the configuration `parley serve` starts from.
func DefaultConfig() Config {
	return Config{
		UDP: ":5060", TCP: ":5060", TLS: ":5061", WS: ":5066", WSS: ":5067",
		UserAgent:        "Parley",
		Realm:            "parley",
		DigestAlgorithms: []string{AlgMD5},
		NonceTTL:         5 * time.Minute,
		AuthFailures:     20, AuthFailureWindow: time.Minute,
		MinExpires: 60, MaxExpires: 3600, DefaultExpires: 3600,
		MinSubscribeExpires: 60, MaxSubscribeExpires: 3600, DefaultSubscribeExpires: 3600,
		HandshakeTimeout:   10 * time.Second,
		CredentialCacheTTL: 30 * time.Second, CredentialCacheSize: 200000,
		CredentialIndexSize: 1000000,
		UDPReadBuffer:       4 << 20,
	}
}

// withDefaults fills zero fields from DefaultConfig and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.UserAgent == "" {
		c.UserAgent = d.UserAgent
	}
	if c.Realm == "" {
		c.Realm = d.Realm
	}
	if strings.ContainsAny(c.Realm, "\"\\\r\n") {
		return c, fmt.Errorf("sip config: realm %q may not contain quotes, backslashes or line breaks", c.Realm)
	}
	if len(c.DigestAlgorithms) == 0 {
		c.DigestAlgorithms = d.DigestAlgorithms
	}
	for i, a := range c.DigestAlgorithms {
		switch strings.ToUpper(a) {
		case "MD5":
			c.DigestAlgorithms[i] = AlgMD5
		case "SHA-256":
			c.DigestAlgorithms[i] = AlgSHA256
		default:
			return c, fmt.Errorf("sip config: digest algorithm %q (want MD5 or SHA-256)", a)
		}
	}
	if c.NonceTTL <= 0 {
		c.NonceTTL = d.NonceTTL
	}
	if c.AuthFailures == 0 {
		c.AuthFailures = d.AuthFailures
	}
	if c.AuthFailureWindow <= 0 {
		c.AuthFailureWindow = d.AuthFailureWindow
	}
	if c.MinExpires <= 0 {
		c.MinExpires = d.MinExpires
	}
	if c.MaxExpires <= 0 {
		c.MaxExpires = d.MaxExpires
	}
	if c.DefaultExpires <= 0 {
		c.DefaultExpires = d.DefaultExpires
	}
	if c.MinExpires > c.MaxExpires {
		return c, fmt.Errorf("sip config: min_expires %d > max_expires %d", c.MinExpires, c.MaxExpires)
	}
	c.DefaultExpires = max(c.MinExpires, min(c.DefaultExpires, c.MaxExpires))
	if c.MinSubscribeExpires <= 0 {
		c.MinSubscribeExpires = d.MinSubscribeExpires
	}
	if c.MaxSubscribeExpires <= 0 {
		c.MaxSubscribeExpires = d.MaxSubscribeExpires
	}
	if c.DefaultSubscribeExpires <= 0 {
		c.DefaultSubscribeExpires = d.DefaultSubscribeExpires
	}
	if c.MinSubscribeExpires > c.MaxSubscribeExpires {
		return c, fmt.Errorf("sip config: min_subscribe_expires %d > max_subscribe_expires %d", c.MinSubscribeExpires, c.MaxSubscribeExpires)
	}
	c.DefaultSubscribeExpires = max(c.MinSubscribeExpires, min(c.DefaultSubscribeExpires, c.MaxSubscribeExpires))
	if c.CredentialCacheTTL == 0 {
		c.CredentialCacheTTL = d.CredentialCacheTTL
	}
	if c.CredentialCacheSize <= 0 {
		c.CredentialCacheSize = d.CredentialCacheSize
	}
	if c.UDPReadBuffer == 0 {
		c.UDPReadBuffer = d.UDPReadBuffer
	}
	if c.CredentialIndexSize == 0 {
		c.CredentialIndexSize = d.CredentialIndexSize
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return c, fmt.Errorf("sip config: cert_file and key_file go together")
	}
	if _, err := parseTrunk(c.Trunk); err != nil {
		return c, err
	}
	if c.UDP == "" && c.TCP == "" && c.TLS == "" && c.WS == "" && c.WSS == "" {
		return c, fmt.Errorf("sip config: no listener address")
	}
	return c, nil
}

// auth is what authentication takes of c (with its defaults filled in).
func (c Config) auth() sipauth.Config {
	return sipauth.Config{Realm: c.Realm, DigestAlgorithms: c.DigestAlgorithms, NonceTTL: c.NonceTTL,
		AuthFailures: c.AuthFailures, AuthFailureWindow: c.AuthFailureWindow,
		CredentialCacheTTL: c.CredentialCacheTTL, CredentialCacheSize: c.CredentialCacheSize,
		CredentialIndexSize: c.CredentialIndexSize}
}

// registrar is what the registrar takes of c (with its defaults filled in).
func (c Config) registrar() registrar.Config {
	return registrar.Config{MinExpires: c.MinExpires, MaxExpires: c.MaxExpires, DefaultExpires: c.DefaultExpires}
}
