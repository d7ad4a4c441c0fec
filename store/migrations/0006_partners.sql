-- Partner delegation (SPEC §4c): accounts created within a partner are listed
-- by owner_partner_sid (the column exists since 0001).
CREATE INDEX accounts_partner ON accounts(owner_partner_sid) WHERE owner_partner_sid IS NOT NULL;
