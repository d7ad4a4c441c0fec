-- Registrar bindings become an append-only log (see store/bindings.go): a
-- flush of the presence registry appends its changes at the end of the table
-- instead of updating rows scattered over it, which wrote a whole page to the
-- WAL for almost every binding when registrations arrive in random order.
-- bkey is the binding's key (account, identity, binding key) and data the
-- rest of it, both in the encoding of store/bindingcodec.go. The rows of the
-- old table sip_bindings are moved here by Store.Open (they need that
-- encoding), which then drops it.
CREATE TABLE sip_binding_log (
    seq     INTEGER PRIMARY KEY,
    bkey    BLOB NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    expires INTEGER NOT NULL DEFAULT 0,
    data    BLOB
);
