-- Limits per account and resource; absent rows use the configured default.
CREATE TABLE limits (
	account_sid TEXT NOT NULL,
	resource    TEXT NOT NULL,
	lim         INTEGER NOT NULL, -- -1: unlimited
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (account_sid, resource)
) WITHOUT ROWID;

-- Leased capacity. A lease counts against its account's limit until it is
-- released or expires_ms passes without a renewal.
CREATE TABLE leases (
	id          TEXT PRIMARY KEY,
	holder      TEXT NOT NULL,
	account_sid TEXT NOT NULL,
	resource    TEXT NOT NULL,
	count       INTEGER NOT NULL CHECK (count > 0),
	expires_ms  INTEGER NOT NULL
);
CREATE INDEX leases_expiry ON leases (expires_ms);
CREATE INDEX leases_holder ON leases (holder);
