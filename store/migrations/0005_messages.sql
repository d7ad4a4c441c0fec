-- Messages (SPEC §3 messaging). Times are Unix milliseconds, UTC; 0 = not (yet).
-- target is the presence identity a message is delivered to ("client:bob",
-- "sip:bob@pbx.example.com"); '' for messages to an application.
CREATE TABLE messages (
    sid                    TEXT PRIMARY KEY,
    account_sid            TEXT NOT NULL REFERENCES accounts(sid),
    application_sid        TEXT NOT NULL DEFAULT '',
    from_addr              TEXT NOT NULL,
    to_addr                TEXT NOT NULL,
    target                 TEXT NOT NULL DEFAULT '',
    body                   BLOB NOT NULL,
    content_type           TEXT NOT NULL DEFAULT 'text/plain',
    direction              TEXT NOT NULL,
    status                 TEXT NOT NULL,
    error_code             INTEGER NOT NULL DEFAULT 0,
    error_message          TEXT NOT NULL DEFAULT '',
    status_callback        TEXT NOT NULL DEFAULT '',
    status_callback_method TEXT NOT NULL DEFAULT 'POST',
    expires_at             INTEGER NOT NULL DEFAULT 0,
    date_sent              INTEGER NOT NULL DEFAULT 0,
    date_created           INTEGER NOT NULL,
    date_updated           INTEGER NOT NULL
);
CREATE INDEX messages_account ON messages(account_sid, date_created);
-- Store-and-forward: the queued messages of an identity, oldest first.
CREATE INDEX messages_queued ON messages(account_sid, target, date_created) WHERE status = 'queued';

-- A SIP domain may route messages addressed to it (to a user it does not
-- have) to a messaging URL, as voice_url does for calls.
ALTER TABLE sip_domains ADD COLUMN messaging_url TEXT NOT NULL DEFAULT '';
ALTER TABLE sip_domains ADD COLUMN messaging_method TEXT NOT NULL DEFAULT 'POST';
