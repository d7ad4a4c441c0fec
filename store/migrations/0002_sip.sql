-- SIP domains, credential lists and registrar bindings (SPEC §2). Times are Unix milliseconds, UTC.
CREATE TABLE sip_domains (
    sid                  TEXT PRIMARY KEY,
    account_sid          TEXT NOT NULL REFERENCES accounts(sid),
    domain_name          TEXT NOT NULL COLLATE NOCASE UNIQUE,
    friendly_name        TEXT NOT NULL,
    registration_enabled INTEGER NOT NULL DEFAULT 1,
    voice_url            TEXT NOT NULL DEFAULT '',
    voice_method         TEXT NOT NULL DEFAULT 'POST',
    date_created         INTEGER NOT NULL,
    date_updated         INTEGER NOT NULL
);
CREATE INDEX sip_domains_account ON sip_domains(account_sid);

CREATE TABLE sip_credential_lists (
    sid           TEXT PRIMARY KEY,
    account_sid   TEXT NOT NULL REFERENCES accounts(sid),
    friendly_name TEXT NOT NULL,
    date_created  INTEGER NOT NULL,
    date_updated  INTEGER NOT NULL
);
CREATE INDEX sip_credential_lists_account ON sip_credential_lists(account_sid);

-- Passwords are never stored: only HA1 = H(username:realm:password) for MD5 and SHA-256.
CREATE TABLE sip_credentials (
    sid                 TEXT PRIMARY KEY,
    account_sid         TEXT NOT NULL REFERENCES accounts(sid),
    credential_list_sid TEXT NOT NULL REFERENCES sip_credential_lists(sid) ON DELETE CASCADE,
    username            TEXT NOT NULL,
    realm               TEXT NOT NULL,
    ha1_md5             TEXT NOT NULL,
    ha1_sha256          TEXT NOT NULL,
    date_created        INTEGER NOT NULL,
    date_updated        INTEGER NOT NULL,
    UNIQUE (credential_list_sid, username)
);

CREATE TABLE sip_domain_credential_lists (
    domain_sid          TEXT NOT NULL REFERENCES sip_domains(sid) ON DELETE CASCADE,
    credential_list_sid TEXT NOT NULL REFERENCES sip_credential_lists(sid) ON DELETE CASCADE,
    date_created        INTEGER NOT NULL,
    PRIMARY KEY (domain_sid, credential_list_sid)
);
CREATE INDEX sip_domain_credential_lists_list ON sip_domain_credential_lists(credential_list_sid);

-- Registrar bindings, written behind the in-memory presence registry.
CREATE TABLE sip_bindings (
    account_sid  TEXT NOT NULL,
    identity     TEXT NOT NULL,
    binding_key  TEXT NOT NULL,
    contact      TEXT NOT NULL,
    instance_id  TEXT NOT NULL DEFAULT '',
    reg_id       INTEGER NOT NULL DEFAULT 0,
    call_id      TEXT NOT NULL,
    cseq         INTEGER NOT NULL,
    q            REAL NOT NULL DEFAULT 0,
    expires      INTEGER NOT NULL,
    transport    TEXT NOT NULL,
    source       TEXT NOT NULL,
    local_addr   TEXT NOT NULL DEFAULT '',
    flow_id      TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    date_updated INTEGER NOT NULL,
    PRIMARY KEY (account_sid, identity, binding_key)
) WITHOUT ROWID;
CREATE INDEX sip_bindings_expires ON sip_bindings(expires);
