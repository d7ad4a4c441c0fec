-- Accounts, API keys and applications (SPEC §1). Times are Unix milliseconds, UTC.
CREATE TABLE accounts (
    sid               TEXT PRIMARY KEY,
    friendly_name     TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
    auth_token        TEXT NOT NULL,
    owner_account_sid TEXT REFERENCES accounts(sid),
    owner_partner_sid TEXT,
    date_created      INTEGER NOT NULL,
    date_updated      INTEGER NOT NULL
);
CREATE INDEX accounts_owner ON accounts(owner_account_sid);

CREATE TABLE api_keys (
    sid           TEXT PRIMARY KEY,
    account_sid   TEXT NOT NULL REFERENCES accounts(sid),
    friendly_name TEXT NOT NULL,
    secret        TEXT NOT NULL,
    revoked_at    INTEGER,
    date_created  INTEGER NOT NULL,
    date_updated  INTEGER NOT NULL
);
CREATE INDEX api_keys_account ON api_keys(account_sid);

CREATE TABLE applications (
    sid                    TEXT PRIMARY KEY,
    account_sid            TEXT NOT NULL REFERENCES accounts(sid),
    friendly_name          TEXT NOT NULL,
    voice_url              TEXT NOT NULL DEFAULT '',
    voice_method           TEXT NOT NULL DEFAULT 'POST',
    voice_fallback_url     TEXT NOT NULL DEFAULT '',
    voice_fallback_method  TEXT NOT NULL DEFAULT 'POST',
    status_callback        TEXT NOT NULL DEFAULT '',
    status_callback_method TEXT NOT NULL DEFAULT 'POST',
    messaging_url          TEXT NOT NULL DEFAULT '',
    messaging_method       TEXT NOT NULL DEFAULT 'POST',
    date_created           INTEGER NOT NULL,
    date_updated           INTEGER NOT NULL
);
CREATE INDEX applications_account ON applications(account_sid);
