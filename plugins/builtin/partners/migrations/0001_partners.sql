-- The built-in partners plugin's own database (SPEC §4c). Times are Unix ms, UTC.
CREATE TABLE partners (
    sid             TEXT PRIMARY KEY,
    friendly_name   TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    api_secret_hash BLOB NOT NULL,          -- sha256 of the REST API secret
    allowed_origins TEXT NOT NULL,          -- JSON array of origins
    features        TEXT NOT NULL,          -- JSON array of portal features
    date_created_ms INTEGER NOT NULL,
    date_updated_ms INTEGER NOT NULL
);

CREATE TABLE partner_keys (
    partner_sid     TEXT NOT NULL REFERENCES partners(sid),
    kid             TEXT NOT NULL,
    type            TEXT NOT NULL CHECK (type IN ('hmac', 'ed25519', 'rsa')),
    material        BLOB NOT NULL,          -- HMAC secret or PEM public key
    revoked_ms      INTEGER NOT NULL DEFAULT 0,
    date_created_ms INTEGER NOT NULL,
    PRIMARY KEY (partner_sid, kid)
);

-- Assertion ids seen, kept until the assertion could no longer be accepted.
CREATE TABLE seen_jtis (
    partner_sid TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_ms  INTEGER NOT NULL,
    PRIMARY KEY (partner_sid, jti)
);
CREATE INDEX seen_jtis_expiry ON seen_jtis(expires_ms);

-- Single-use portal tokens (only their sha256 is stored).
CREATE TABLE portal_tokens (
    token_hash  BLOB PRIMARY KEY,
    partner_sid TEXT NOT NULL,
    account_sid TEXT NOT NULL,
    features    TEXT NOT NULL,
    expires_ms  INTEGER NOT NULL,
    redeemed_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX portal_tokens_expiry ON portal_tokens(expires_ms);

-- Portal sessions opened by redeeming a token (the cookie's sha256).
CREATE TABLE portal_sessions (
    session_hash BLOB PRIMARY KEY,
    partner_sid  TEXT NOT NULL,
    account_sid  TEXT NOT NULL,
    features     TEXT NOT NULL,
    expires_ms   INTEGER NOT NULL
);
CREATE INDEX portal_sessions_expiry ON portal_sessions(expires_ms);
