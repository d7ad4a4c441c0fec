package store

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/presence"
)

// Sid prefixes of SIP resources.
const (
	SidSIPDomain         = "SD"
	SidSIPCredentialList = "CL"
	SidSIPCredential     = "CR"
)

// SIPDomain is a SIP domain of an account: REGISTERs to it are checked
// against the credential lists mapped to it.
type SIPDomain struct {
	Sid                 string
	AccountSid          string
	DomainName          string
	FriendlyName        string
	RegistrationEnabled bool
	VoiceURL            string
	VoiceMethod         string
	// MessagingURL takes messages to users the domain does not have (0005).
	MessagingURL    string
	MessagingMethod string
	DateCreated     time.Time
	DateUpdated     time.Time
}

// NewSIPDomain describes a domain to create.
type NewSIPDomain struct {
	DomainName          string
	FriendlyName        string
	RegistrationEnabled bool
	VoiceURL            string
	VoiceMethod         string
	MessagingURL        string
	MessagingMethod     string
	// ReservedNames are refused as DomainName besides the forms
	// CheckSIPDomainName always refuses: the server's own names.
	ReservedNames []string
}

// SIPCredentialList groups SIP credentials.
type SIPCredentialList struct {
	Sid          string
	AccountSid   string
	FriendlyName string
	DateCreated  time.Time
	DateUpdated  time.Time
}

// SIPCredential is a username with its HA1 hashes (the password is not kept).
type SIPCredential struct {
	Sid               string
	AccountSid        string
	CredentialListSid string
	Username          string
	Realm             string
	HA1MD5            string
	HA1SHA256         string
	DateCreated       time.Time
	DateUpdated       time.Time
}

// HA1 returns hex H(username:realm:password) for MD5 and SHA-256 (RFC 7616).
func HA1(username, realm, password string) (md5hex, sha256hex string) {
	in := []byte(username + ":" + realm + ":" + password)
	m := md5.Sum(in)
	s := sha256.Sum256(in)
	return hex.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

// validSIPUsername accepts RFC 3261 "user" unreserved/escaped characters
// minus the escape itself, so that a username appears verbatim in a SIP URI.
func validSIPUsername(u string) bool {
	if u == "" || len(u) > 128 {
		return false
	}
	for _, c := range u {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("-_.!~*'()&=+$,;?/", c):
		default:
			return false
		}
	}
	return true
}

// ErrInvalid is wrapped by store methods that reject their input.
var ErrInvalid = errors.New("invalid")

const sipDomainCols = `sid, account_sid, domain_name, friendly_name, registration_enabled, voice_url, voice_method,
	messaging_url, messaging_method, date_created, date_updated`

func scanSIPDomain(row scanner) (SIPDomain, error) {
	var d SIPDomain
	var created, updated int64
	err := row.Scan(&d.Sid, &d.AccountSid, &d.DomainName, &d.FriendlyName, &d.RegistrationEnabled, &d.VoiceURL, &d.VoiceMethod,
		&d.MessagingURL, &d.MessagingMethod, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return SIPDomain{}, ErrNotFound
	}
	if err != nil {
		return SIPDomain{}, err
	}
	d.DateCreated, d.DateUpdated = fromMS(created), fromMS(updated)
	return d, nil
}

// CreateSIPDomain creates a domain for an account. Domain names are unique
// across the server and compared case-insensitively.
func (s *Store) CreateSIPDomain(ctx context.Context, accountSid string, in NewSIPDomain) (SIPDomain, error) {
	name, err := CheckSIPDomainName(in.DomainName, in.ReservedNames)
	if err != nil {
		return SIPDomain{}, fmt.Errorf("create sip domain: %w", err)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	d := SIPDomain{
		Sid: sid.New(SidSIPDomain), AccountSid: accountSid, DomainName: name, FriendlyName: in.FriendlyName,
		RegistrationEnabled: in.RegistrationEnabled, VoiceURL: in.VoiceURL, VoiceMethod: in.VoiceMethod,
		MessagingURL: in.MessagingURL, MessagingMethod: defaultMethod(in.MessagingMethod),
		DateCreated: now, DateUpdated: now,
	}
	if d.FriendlyName == "" {
		d.FriendlyName = name
	}
	if d.VoiceMethod == "" {
		d.VoiceMethod = "POST"
	}
	_, err = s.W.ExecContext(ctx, `INSERT INTO sip_domains (`+sipDomainCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.Sid, d.AccountSid, d.DomainName, d.FriendlyName, d.RegistrationEnabled, d.VoiceURL, d.VoiceMethod,
		d.MessagingURL, d.MessagingMethod, ms(now), ms(now))
	if err != nil {
		return SIPDomain{}, fmt.Errorf("create sip domain %s: %w", name, err)
	}
	return d, nil
}

// SIPDomain fetches a domain of an account by sid.
func (s *Store) SIPDomain(ctx context.Context, accountSid, domainSid string) (SIPDomain, error) {
	d, err := scanSIPDomain(s.R.QueryRowContext(ctx, `SELECT `+sipDomainCols+` FROM sip_domains WHERE sid = ? AND account_sid = ?`, domainSid, accountSid))
	if err != nil {
		return SIPDomain{}, fmt.Errorf("sip domain %s: %w", domainSid, err)
	}
	return d, nil
}

// SIPDomainByName fetches a domain by its name, whatever the account.
func (s *Store) SIPDomainByName(ctx context.Context, name string) (SIPDomain, error) {
	d, err := scanSIPDomain(s.R.QueryRowContext(ctx, `SELECT `+sipDomainCols+` FROM sip_domains WHERE domain_name = ?`, strings.ToLower(name)))
	if err != nil {
		return SIPDomain{}, fmt.Errorf("sip domain %s: %w", name, err)
	}
	return d, nil
}

// ListSIPDomains returns one page of an account's domains.
func (s *Store) ListSIPDomains(ctx context.Context, accountSid string, p Page) ([]SIPDomain, bool, error) {
	return queryPage(ctx, s.R, "sip domains", `SELECT `+sipDomainCols+` FROM sip_domains WHERE account_sid = ?
		ORDER BY date_created, sid LIMIT ? OFFSET ?`, []any{accountSid}, p, scanSIPDomain)
}

// SetSIPDomainRegistration enables or disables registration on a domain.
func (s *Store) SetSIPDomainRegistration(ctx context.Context, accountSid, domainSid string, enabled bool) error {
	res, err := s.W.ExecContext(ctx, `UPDATE sip_domains SET registration_enabled = ?, date_updated = ? WHERE sid = ? AND account_sid = ?`,
		enabled, ms(s.now()), domainSid, accountSid)
	if err != nil {
		return fmt.Errorf("update sip domain %s: %w", domainSid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sip domain %s: %w", domainSid, ErrNotFound)
	}
	return nil
}

// DeleteSIPDomain deletes a domain and its credential-list mappings.
func (s *Store) DeleteSIPDomain(ctx context.Context, accountSid, domainSid string) error {
	res, err := s.W.ExecContext(ctx, `DELETE FROM sip_domains WHERE sid = ? AND account_sid = ?`, domainSid, accountSid)
	if err != nil {
		return fmt.Errorf("delete sip domain %s: %w", domainSid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sip domain %s: %w", domainSid, ErrNotFound)
	}
	return nil
}

// CreateSIPCredentialList creates an empty credential list.
func (s *Store) CreateSIPCredentialList(ctx context.Context, accountSid, friendlyName string) (SIPCredentialList, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	l := SIPCredentialList{Sid: sid.New(SidSIPCredentialList), AccountSid: accountSid, FriendlyName: friendlyName, DateCreated: now, DateUpdated: now}
	if l.FriendlyName == "" {
		l.FriendlyName = l.Sid
	}
	if _, err := s.W.ExecContext(ctx, `INSERT INTO sip_credential_lists (sid, account_sid, friendly_name, date_created, date_updated) VALUES (?, ?, ?, ?, ?)`,
		l.Sid, l.AccountSid, l.FriendlyName, ms(now), ms(now)); err != nil {
		return SIPCredentialList{}, fmt.Errorf("create sip credential list: %w", err)
	}
	return l, nil
}

// ListSIPCredentialLists returns one page of an account's credential lists.
func (s *Store) ListSIPCredentialLists(ctx context.Context, accountSid string, p Page) ([]SIPCredentialList, bool, error) {
	return queryPage(ctx, s.R, "sip credential lists", `SELECT sid, account_sid, friendly_name, date_created, date_updated
		FROM sip_credential_lists WHERE account_sid = ? ORDER BY date_created, sid LIMIT ? OFFSET ?`, []any{accountSid}, p,
		func(row scanner) (SIPCredentialList, error) {
			var l SIPCredentialList
			var c, u int64
			if err := row.Scan(&l.Sid, &l.AccountSid, &l.FriendlyName, &c, &u); err != nil {
				return l, err
			}
			l.DateCreated, l.DateUpdated = fromMS(c), fromMS(u)
			return l, nil
		})
}

// DeleteSIPCredentialList deletes a list, its credentials and its mappings.
func (s *Store) DeleteSIPCredentialList(ctx context.Context, accountSid, listSid string) error {
	res, err := s.W.ExecContext(ctx, `DELETE FROM sip_credential_lists WHERE sid = ? AND account_sid = ?`, listSid, accountSid)
	if err != nil {
		return fmt.Errorf("delete sip credential list %s: %w", listSid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sip credential list %s: %w", listSid, ErrNotFound)
	}
	return nil
}

// CreateSIPCredential adds a username to a list, storing HA1 hashes of the
// password computed with realm (the registrar's digest realm).
func (s *Store) CreateSIPCredential(ctx context.Context, accountSid, listSid, username, password, realm string) (SIPCredential, error) {
	if !validSIPUsername(username) {
		return SIPCredential{}, fmt.Errorf("create sip credential: %w: username %q", ErrInvalid, username)
	}
	if len(password) < 8 || len(password) > 256 {
		return SIPCredential{}, fmt.Errorf("create sip credential: %w: password must be 8 to 256 characters", ErrInvalid)
	}
	if realm == "" || strings.ContainsAny(realm, "\"\\\r\n") {
		return SIPCredential{}, fmt.Errorf("create sip credential: %w: realm %q", ErrInvalid, realm)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	md5hex, shahex := HA1(username, realm, password)
	c := SIPCredential{Sid: sid.New(SidSIPCredential), AccountSid: accountSid, CredentialListSid: listSid, Username: username,
		Realm: realm, HA1MD5: md5hex, HA1SHA256: shahex, DateCreated: now, DateUpdated: now}
	res, err := s.W.ExecContext(ctx, `INSERT INTO sip_credentials (sid, account_sid, credential_list_sid, username, realm, ha1_md5, ha1_sha256, date_created, date_updated)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM sip_credential_lists WHERE sid = ? AND account_sid = ?)`,
		c.Sid, c.AccountSid, c.CredentialListSid, c.Username, c.Realm, c.HA1MD5, c.HA1SHA256, ms(now), ms(now), listSid, accountSid)
	if err != nil {
		return SIPCredential{}, fmt.Errorf("create sip credential %s: %w", username, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return SIPCredential{}, fmt.Errorf("sip credential list %s: %w", listSid, ErrNotFound)
	}
	return c, nil
}

// DeleteSIPCredential removes a credential.
func (s *Store) DeleteSIPCredential(ctx context.Context, accountSid, credentialSid string) error {
	res, err := s.W.ExecContext(ctx, `DELETE FROM sip_credentials WHERE sid = ? AND account_sid = ?`, credentialSid, accountSid)
	if err != nil {
		return fmt.Errorf("delete sip credential %s: %w", credentialSid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sip credential %s: %w", credentialSid, ErrNotFound)
	}
	return nil
}

// MapSIPCredentialList lets a domain accept the credentials of a list; both
// must belong to the account.
func (s *Store) MapSIPCredentialList(ctx context.Context, accountSid, domainSid, listSid string) error {
	res, err := s.W.ExecContext(ctx, `INSERT OR IGNORE INTO sip_domain_credential_lists (domain_sid, credential_list_sid, date_created)
		SELECT d.sid, l.sid, ? FROM sip_domains d, sip_credential_lists l
		WHERE d.sid = ? AND d.account_sid = ? AND l.sid = ? AND l.account_sid = ?`,
		ms(s.now()), domainSid, accountSid, listSid, accountSid)
	if err != nil {
		return fmt.Errorf("map credential list %s to domain %s: %w", listSid, domainSid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var exists int
		_ = s.R.QueryRowContext(ctx, `SELECT count(*) FROM sip_domain_credential_lists WHERE domain_sid = ? AND credential_list_sid = ?`, domainSid, listSid).Scan(&exists)
		if exists == 0 {
			return fmt.Errorf("map credential list %s to domain %s: %w", listSid, domainSid, ErrNotFound)
		}
	}
	return nil
}

// UnmapSIPCredentialList removes a mapping.
func (s *Store) UnmapSIPCredentialList(ctx context.Context, accountSid, domainSid, listSid string) error {
	res, err := s.W.ExecContext(ctx, `DELETE FROM sip_domain_credential_lists WHERE domain_sid = ? AND credential_list_sid = ?
		AND domain_sid IN (SELECT sid FROM sip_domains WHERE account_sid = ?)`, domainSid, listSid, accountSid)
	if err != nil {
		return fmt.Errorf("unmap credential list %s from domain %s: %w", listSid, domainSid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("mapping %s/%s: %w", domainSid, listSid, ErrNotFound)
	}
	return nil
}

// DigestCredential finds the credential a REGISTER to domain by username is
// checked against: the domain must exist and allow registration, and one of
// its credential lists must hold the username. The errors wrap
// presence.ErrUnknownDomain, presence.ErrRegistrationDisabled or
// presence.ErrUnknownUser. When several lists hold the username, the oldest
// credential wins.
func (s *Store) DigestCredential(ctx context.Context, domain, username string) (presence.DigestCredential, error) {
	return scanDigestCredential(s.R.QueryRowContext(ctx, digestCredentialQuery, username, strings.ToLower(domain)), domain, username)
}

// One query (it runs for every REGISTER that is not cached): the domain row
// always comes back when the domain is served; the credential columns are
// NULL when no mapped list holds the username.
const digestCredentialQuery = `SELECT d.account_sid, a.status, d.registration_enabled, c.realm, c.ha1_md5, c.ha1_sha256
	FROM sip_domains d
	JOIN accounts a ON a.sid = d.account_sid
	LEFT JOIN sip_domain_credential_lists m ON m.domain_sid = d.sid
	LEFT JOIN sip_credentials c ON c.credential_list_sid = m.credential_list_sid AND c.username = ?
	WHERE d.domain_name = ?
	ORDER BY c.sid IS NULL, c.date_created, c.sid LIMIT 1`

func scanDigestCredential(row *sql.Row, domain, username string) (presence.DigestCredential, error) {
	var accountSid, status string
	var enabled bool
	var realm, md5hex, shahex sql.NullString
	err := row.Scan(&accountSid, &status, &enabled, &realm, &md5hex, &shahex)
	if errors.Is(err, sql.ErrNoRows) || err == nil && status != StatusActive {
		return presence.DigestCredential{}, fmt.Errorf("%w: %s", presence.ErrUnknownDomain, domain)
	}
	if err != nil {
		return presence.DigestCredential{}, fmt.Errorf("sip credential %s@%s: %w", username, domain, err)
	}
	if !enabled {
		return presence.DigestCredential{}, fmt.Errorf("%w: %s", presence.ErrRegistrationDisabled, domain)
	}
	if !realm.Valid {
		return presence.DigestCredential{}, fmt.Errorf("%w: %s@%s", presence.ErrUnknownUser, username, domain)
	}
	return presence.DigestCredential{AccountSid: accountSid, Domain: strings.ToLower(domain), Username: username,
		Realm: realm.String, HA1MD5: md5hex.String, HA1SHA256: shahex.String}, nil
}

// SIPCredentials answers DigestCredential with a prepared statement: the
// registrar's hot lookup without re-parsing SQL each time. Close it before
// the store.
type SIPCredentials struct {
	stmt  *sql.Stmt
	store *Store
}

// SIPCredentials prepares the registrar's credential lookup.
func (s *Store) SIPCredentials(ctx context.Context) (*SIPCredentials, error) {
	stmt, err := s.R.PrepareContext(ctx, digestCredentialQuery)
	if err != nil {
		return nil, fmt.Errorf("prepare sip credential lookup: %w", err)
	}
	return &SIPCredentials{stmt: stmt, store: s}, nil
}

// DomainDigestCredentials is Store.DomainDigestCredentials.
func (c *SIPCredentials) DomainDigestCredentials(ctx context.Context, domain string, max int, each func(presence.DigestCredential)) (string, error) {
	return c.store.DomainDigestCredentials(ctx, domain, max, each)
}

// RegistrationDomains is Store.RegistrationDomains.
func (c *SIPCredentials) RegistrationDomains(ctx context.Context) ([]string, error) {
	return c.store.RegistrationDomains(ctx)
}

// DigestCredential is Store.DigestCredential.
func (c *SIPCredentials) DigestCredential(ctx context.Context, domain, username string) (presence.DigestCredential, error) {
	return scanDigestCredential(c.stmt.QueryRowContext(ctx, username, strings.ToLower(domain)), domain, username)
}

// Close releases the prepared statement.
func (c *SIPCredentials) Close() error { return c.stmt.Close() }

// DomainDigestCredentials reads every credential a REGISTER to domain can be
// checked against, in one read transaction, calling each once per username
// (the oldest credential when several mapped lists hold it, as
// DigestCredential does). The error wraps presence.ErrUnknownDomain or
// presence.ErrRegistrationDisabled as DigestCredential's would (each is then
// not called). When the domain holds more than max credentials (a username
// counts once per mapped list holding it) it returns
// presence.ErrTooManyCredentials without calling each. The registrar's credential index
// (signaling/sip) loads domains with it.
func (s *Store) DomainDigestCredentials(ctx context.Context, domain string, max int, each func(presence.DigestCredential)) (accountSid string, err error) {
	domain = strings.ToLower(domain)
	tx, err := s.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return "", fmt.Errorf("sip credentials of %s: %w", domain, err)
	}
	defer tx.Rollback()
	var domainSid, status string
	var enabled bool
	err = tx.QueryRowContext(ctx, `SELECT d.sid, d.account_sid, a.status, d.registration_enabled
		FROM sip_domains d JOIN accounts a ON a.sid = d.account_sid WHERE d.domain_name = ?`, domain).Scan(&domainSid, &accountSid, &status, &enabled)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && status != StatusActive:
		return "", fmt.Errorf("%w: %s", presence.ErrUnknownDomain, domain)
	case err != nil:
		return "", fmt.Errorf("sip credentials of %s: %w", domain, err)
	case !enabled:
		return "", fmt.Errorf("%w: %s", presence.ErrRegistrationDisabled, domain)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sip_domain_credential_lists m
		JOIN sip_credentials c ON c.credential_list_sid = m.credential_list_sid WHERE m.domain_sid = ?`, domainSid).Scan(&n); err != nil {
		return "", fmt.Errorf("sip credentials of %s: %w", domain, err)
	}
	if n > max {
		return "", fmt.Errorf("%w: %s has %d", presence.ErrTooManyCredentials, domain, n)
	}
	rows, err := tx.QueryContext(ctx, `SELECT c.username, c.realm, c.ha1_md5, c.ha1_sha256
		FROM sip_domain_credential_lists m JOIN sip_credentials c ON c.credential_list_sid = m.credential_list_sid
		WHERE m.domain_sid = ? ORDER BY c.date_created, c.sid`, domainSid)
	if err != nil {
		return "", fmt.Errorf("sip credentials of %s: %w", domain, err)
	}
	defer rows.Close()
	seen := make(map[string]struct{}, n)
	for rows.Next() {
		c := presence.DigestCredential{AccountSid: accountSid, Domain: domain}
		if err := rows.Scan(&c.Username, &c.Realm, &c.HA1MD5, &c.HA1SHA256); err != nil {
			return "", fmt.Errorf("sip credentials of %s: %w", domain, err)
		}
		if _, dup := seen[c.Username]; dup {
			continue // an older credential of another list wins
		}
		seen[c.Username] = struct{}{}
		each(c)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("sip credentials of %s: %w", domain, err)
	}
	return accountSid, nil
}

// RegistrationDomains lists the names of the SIP domains that accept
// registrations (of active accounts): the registrar preloads their
// credentials.
func (s *Store) RegistrationDomains(ctx context.Context) ([]string, error) {
	rows, err := s.R.QueryContext(ctx, `SELECT d.domain_name FROM sip_domains d JOIN accounts a ON a.sid = d.account_sid
		WHERE d.registration_enabled AND a.status = ? ORDER BY d.domain_name`, StatusActive)
	if err != nil {
		return nil, fmt.Errorf("registration domains: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("registration domains: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

var _ presence.Persister = (*Store)(nil)
