package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Queries behind the REST resources for SIP domains and credential lists.

// SIPDomainUpdate changes a domain; nil fields stay as they are.
type SIPDomainUpdate struct {
	FriendlyName, VoiceURL, VoiceMethod *string
	MessagingURL, MessagingMethod       *string
	RegistrationEnabled                 *bool
}

// UpdateSIPDomain changes a domain of an account.
func (s *Store) UpdateSIPDomain(ctx context.Context, accountSid, domainSid string, u SIPDomainUpdate) (SIPDomain, error) {
	d, err := s.SIPDomain(ctx, accountSid, domainSid)
	if err != nil {
		return SIPDomain{}, err
	}
	if u.FriendlyName != nil {
		d.FriendlyName = *u.FriendlyName
	}
	if u.VoiceURL != nil {
		d.VoiceURL = *u.VoiceURL
	}
	if u.VoiceMethod != nil {
		d.VoiceMethod = *u.VoiceMethod
	}
	if u.MessagingURL != nil {
		d.MessagingURL = *u.MessagingURL
	}
	if u.MessagingMethod != nil {
		d.MessagingMethod = *u.MessagingMethod
	}
	if u.RegistrationEnabled != nil {
		d.RegistrationEnabled = *u.RegistrationEnabled
	}
	d.DateUpdated = s.now().UTC().Truncate(time.Millisecond)
	if _, err := s.W.ExecContext(ctx, `UPDATE sip_domains SET friendly_name = ?, voice_url = ?, voice_method = ?,
		messaging_url = ?, messaging_method = ?, registration_enabled = ?, date_updated = ? WHERE sid = ? AND account_sid = ?`,
		d.FriendlyName, d.VoiceURL, d.VoiceMethod, d.MessagingURL, d.MessagingMethod, d.RegistrationEnabled, ms(d.DateUpdated), domainSid, accountSid); err != nil {
		return SIPDomain{}, fmt.Errorf("update sip domain %s: %w", domainSid, err)
	}
	return d, nil
}

func scanCredentialList(row scanner) (SIPCredentialList, error) {
	var l SIPCredentialList
	var c, u int64
	err := row.Scan(&l.Sid, &l.AccountSid, &l.FriendlyName, &c, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return l, ErrNotFound
	}
	if err != nil {
		return l, err
	}
	l.DateCreated, l.DateUpdated = fromMS(c), fromMS(u)
	return l, nil
}

// SIPCredentialList fetches one credential list of an account.
func (s *Store) SIPCredentialList(ctx context.Context, accountSid, listSid string) (SIPCredentialList, error) {
	l, err := scanCredentialList(s.R.QueryRowContext(ctx, `SELECT sid, account_sid, friendly_name, date_created, date_updated
		FROM sip_credential_lists WHERE sid = ? AND account_sid = ?`, listSid, accountSid))
	if err != nil {
		return l, fmt.Errorf("sip credential list %s: %w", listSid, err)
	}
	return l, nil
}

// ListSIPCredentials returns one page of a list's credentials (usernames; no secrets).
func (s *Store) ListSIPCredentials(ctx context.Context, accountSid, listSid string, p Page) ([]SIPCredential, bool, error) {
	return queryPage(ctx, s.R, "sip credentials", `SELECT sid, account_sid, credential_list_sid, username, date_created, date_updated
		FROM sip_credentials WHERE account_sid = ? AND credential_list_sid = ? ORDER BY date_created, sid LIMIT ? OFFSET ?`,
		[]any{accountSid, listSid}, p, func(row scanner) (SIPCredential, error) {
			var c SIPCredential
			var cr, up int64
			if err := row.Scan(&c.Sid, &c.AccountSid, &c.CredentialListSid, &c.Username, &cr, &up); err != nil {
				return c, err
			}
			c.DateCreated, c.DateUpdated = fromMS(cr), fromMS(up)
			return c, nil
		})
}

// ListSIPDomainCredentialLists returns the credential lists mapped to a domain.
func (s *Store) ListSIPDomainCredentialLists(ctx context.Context, accountSid, domainSid string, p Page) ([]SIPCredentialList, bool, error) {
	return queryPage(ctx, s.R, "sip credential list mappings", `SELECT l.sid, l.account_sid, l.friendly_name, m.date_created, l.date_updated
		FROM sip_domain_credential_lists m JOIN sip_credential_lists l ON l.sid = m.credential_list_sid
		WHERE m.domain_sid = ? AND l.account_sid = ? ORDER BY m.date_created, l.sid LIMIT ? OFFSET ?`,
		[]any{domainSid, accountSid}, p, scanCredentialList)
}

// SIPCredentialInList reports whether a credential belongs to a list of the account.
func (s *Store) SIPCredentialInList(ctx context.Context, accountSid, listSid, credentialSid string) (bool, error) {
	var n int
	err := s.R.QueryRowContext(ctx, `SELECT count(*) FROM sip_credentials WHERE sid = ? AND credential_list_sid = ? AND account_sid = ?`,
		credentialSid, listSid, accountSid).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sip credential %s: %w", credentialSid, err)
	}
	return n > 0, nil
}
