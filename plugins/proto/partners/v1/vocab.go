package partnersv1

import (
	"encoding/json"
	"fmt"
	"time"
)

// Portal features a partner can enable.
const (
	FeaturePresence = "presence"
	FeatureCalls    = "calls"
	FeatureUsage    = "usage"
	FeatureTriggers = "triggers"
)

// Features lists every portal feature.
func Features() []string {
	return []string{FeaturePresence, FeatureCalls, FeatureUsage, FeatureTriggers}
}

// Partner statuses.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
)

// Key types; each allows one signing algorithm.
const (
	KeyHMAC    = "hmac"
	KeyEd25519 = "ed25519"
	KeyRSA     = "rsa"
)

// Reasons an assertion is refused: each failure has its own stable code.
const (
	ReasonMalformed        = "malformed"           // not a compact JWS, or claims of the wrong type
	ReasonAlgNotAllowed    = "alg_not_allowed"     // none, unknown, or not the one the key's type allows
	ReasonUnknownPartner   = "unknown_partner"     // no such partner
	ReasonPartnerSuspended = "partner_suspended"   // the partner is not active
	ReasonWrongIssuer      = "wrong_issuer"        // iss is not the partner in the request path
	ReasonUnknownKid       = "unknown_kid"         // no key with this kid (or no kid)
	ReasonKeyRevoked       = "key_revoked"         // the kid was revoked
	ReasonBadSignature     = "bad_signature"       // the signature does not verify
	ReasonMissingClaim     = "missing_claim"       // iss, sub, aud, exp, iat or jti missing
	ReasonExpired          = "expired"             // exp passed (beyond the skew)
	ReasonIssuedInFuture   = "issued_in_future"    // iat later than now (beyond the skew)
	ReasonLifetimeTooLong  = "lifetime_too_long"   // exp - iat over five minutes
	ReasonWrongAudience    = "wrong_audience"      // aud is not this Parley's public URL
	ReasonBadFeatures      = "bad_features"        // features names an unknown feature
	ReasonUnknownAccount   = "unknown_account"     // sub names no account
	ReasonAccountNotOwned  = "account_not_partner" // the account belongs to another partner (or none)
	ReasonAccountInactive  = "account_inactive"    // the account is suspended or closed
	ReasonReplayed         = "replayed"            // this jti was seen before
)

// PluginConfig is what the built-in partners plugin process receives from
// the host, as JSON in PluginConfigEnv.
type PluginConfig struct {
	DB     string `json:"db"`
	SkewMS int64  `json:"skew_ms"`
}

// PluginConfigEnv is the environment variable carrying PluginConfig.
const PluginConfigEnv = "PARLEY_PARTNERS_CONFIG"

// PluginEnv returns the environment entries that configure the built-in
// partners plugin: its database file and the tolerated clock skew.
func PluginEnv(dbFile string, skew time.Duration) ([]string, error) {
	b, err := json.Marshal(PluginConfig{DB: dbFile, SkewMS: skew.Milliseconds()})
	if err != nil {
		return nil, fmt.Errorf("partners plugin config: %w", err)
	}
	return []string{PluginConfigEnv + "=" + string(b)}, nil
}

// PluginConfigFromEnv reads the PluginConfig the host set.
func PluginConfigFromEnv(getenv func(string) string) (PluginConfig, error) {
	raw := getenv(PluginConfigEnv)
	if raw == "" {
		return PluginConfig{}, fmt.Errorf("%s is not set (the built-in partners plugin is started by parley serve)", PluginConfigEnv)
	}
	var pc PluginConfig
	if err := json.Unmarshal([]byte(raw), &pc); err != nil || pc.DB == "" {
		return PluginConfig{}, fmt.Errorf("%s: want {\"db\": FILE}: %v", PluginConfigEnv, err)
	}
	return pc, nil
}
