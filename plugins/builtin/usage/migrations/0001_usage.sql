-- Counters per account × category × period (day, month, year, all), UTC.
CREATE TABLE counters (
	account_sid TEXT NOT NULL,
	category    TEXT NOT NULL,
	period      TEXT NOT NULL,    -- day | month | year | all
	start_ms    INTEGER NOT NULL, -- period start, Unix ms UTC (0 for all)
	count       INTEGER NOT NULL DEFAULT 0,
	usage       REAL NOT NULL DEFAULT 0,
	PRIMARY KEY (account_sid, period, start_ms, category)
) WITHOUT ROWID;

-- Event ids already counted (idempotent ingestion), pruned after the retention.
CREATE TABLE seen_events (
	id     TEXT PRIMARY KEY,
	day_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE triggers (
	sid             TEXT PRIMARY KEY,
	account_sid     TEXT NOT NULL,
	friendly_name   TEXT NOT NULL DEFAULT '',
	usage_category  TEXT NOT NULL,
	trigger_by      TEXT NOT NULL,
	recurring       TEXT NOT NULL,
	trigger_value   REAL NOT NULL,
	callback_url    TEXT NOT NULL DEFAULT '',
	callback_method TEXT NOT NULL DEFAULT 'POST',
	action          TEXT NOT NULL DEFAULT '',
	action_resource TEXT NOT NULL DEFAULT '',
	action_limit    INTEGER NOT NULL DEFAULT 0,
	fired_period_ms INTEGER,          -- start of the period it last fired in; NULL: never
	date_fired_ms   INTEGER NOT NULL DEFAULT 0,
	date_created_ms INTEGER NOT NULL,
	date_updated_ms INTEGER NOT NULL
);
CREATE INDEX triggers_account ON triggers (account_sid, usage_category);

-- Durable outbox of fired triggers; written in the same transaction as the
-- counter update that crossed the trigger.
CREATE TABLE outbox (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	token            TEXT NOT NULL UNIQUE,  -- idempotency token
	trigger_sid      TEXT NOT NULL,
	account_sid      TEXT NOT NULL,
	trigger_json     TEXT NOT NULL,         -- the trigger when it fired
	date_fired_ms    INTEGER NOT NULL,
	current_value    REAL NOT NULL,
	period_start_ms  INTEGER NOT NULL,
	state            TEXT NOT NULL DEFAULT 'pending', -- pending | delivered | dead
	attempts         INTEGER NOT NULL DEFAULT 0,
	next_attempt_ms  INTEGER NOT NULL,
	claimed_by       TEXT NOT NULL DEFAULT '',
	claimed_until_ms INTEGER NOT NULL DEFAULT 0,
	last_error       TEXT NOT NULL DEFAULT '',
	done_ms          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);
