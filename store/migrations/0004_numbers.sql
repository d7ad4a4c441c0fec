-- Incoming numbers (SPEC §3): a dialled user or number routed to an application.
-- phone_number is unique across the server: a number has one owner.
CREATE TABLE incoming_numbers (
    sid             TEXT PRIMARY KEY,
    account_sid     TEXT NOT NULL REFERENCES accounts(sid),
    phone_number    TEXT NOT NULL UNIQUE,
    friendly_name   TEXT NOT NULL DEFAULT '',
    application_sid TEXT NOT NULL DEFAULT '',
    date_created    INTEGER NOT NULL,
    date_updated    INTEGER NOT NULL
);
CREATE INDEX incoming_numbers_account ON incoming_numbers(account_sid, date_created);
