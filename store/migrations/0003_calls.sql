-- Calls and recordings (SPEC §3). Times are Unix milliseconds, UTC; 0 = not yet.
CREATE TABLE calls (
    sid             TEXT PRIMARY KEY,
    account_sid     TEXT NOT NULL REFERENCES accounts(sid),
    parent_call_sid TEXT NOT NULL DEFAULT '',
    application_sid TEXT NOT NULL DEFAULT '',
    from_addr       TEXT NOT NULL,
    to_addr         TEXT NOT NULL,
    caller_name     TEXT NOT NULL DEFAULT '',
    direction       TEXT NOT NULL,
    status          TEXT NOT NULL,
    start_time      INTEGER NOT NULL DEFAULT 0,
    answer_time     INTEGER NOT NULL DEFAULT 0,
    end_time        INTEGER NOT NULL DEFAULT 0,
    duration_ms     INTEGER NOT NULL DEFAULT 0,
    date_created    INTEGER NOT NULL,
    date_updated    INTEGER NOT NULL
);
CREATE INDEX calls_account ON calls(account_sid, date_created);

CREATE TABLE recordings (
    sid          TEXT PRIMARY KEY,
    account_sid  TEXT NOT NULL REFERENCES accounts(sid),
    call_sid     TEXT NOT NULL,
    path         TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    date_created INTEGER NOT NULL
);
CREATE INDEX recordings_account ON recordings(account_sid, date_created);
CREATE INDEX recordings_call ON recordings(call_sid);
