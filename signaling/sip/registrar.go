package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
)

// principal is an authenticated user.
type principal struct {
	AccountSid string
	Identity   string // "sip:<user>@<domain>" or "client:<identity>"
	Domain     string // Digest users
	Username   string // Digest users
	Bearer     bool
	// OutgoingApp is a token user's voice.outgoing.application_sid.
	OutgoingApp string
}

// ClientIdentity is the presence identity of an access-token user.
func ClientIdentity(identity string) string { return "client:" + identity }

// SIPIdentity is the presence identity of a Digest user of a SIP domain.
func SIPIdentity(user, domain string) string { return "sip:" + user + "@" + strings.ToLower(domain) }

func sourceIP(req *sip.Request) string {
	h, _, err := net.SplitHostPort(req.Source())
	if err != nil {
		return req.Source()
	}
	return h
}

func validIdentity(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for _, c := range id {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// authenticate checks the request's Authorization against domain (Digest)
// or an access token (Bearer). When it returns false it has responded.
func (s *Server) authenticate(ctx context.Context, req *sip.Request, tx responder, domain string) (principal, bool) {
	now := s.now()
	ip := sourceIP(req)
	if s.limiter.blocked(ip, now) {
		s.respond(tx, req, 403, "Too Many Failed Authentications",
			sip.NewHeader("Retry-After", strconv.Itoa(int(s.cfg.AuthFailureWindow.Seconds()))))
		return principal{}, false
	}
	fail := func(code int, reason string, extra ...sip.Header) (principal, bool) {
		s.limiter.fail(ip, now)
		s.log.Info("sip authentication failed", "method", req.Method, "source", req.Source(), "reason", reason)
		s.respond(tx, req, code, reason, extra...)
		return principal{}, false
	}
	hdrs := req.GetHeaders("authorization")
	if len(hdrs) == 0 {
		s.challenge(req, tx, false)
		return principal{}, false
	}
	var digest map[string]string
	var bearer string
	for _, h := range hdrs {
		a, err := parseAuthorization(h.Value())
		if err != nil {
			return fail(400, "Malformed Authorization")
		}
		switch a.Scheme {
		case "bearer":
			bearer = a.Token
		case "digest":
			if a.Params["realm"] == s.cfg.Realm || digest == nil {
				digest = a.Params
			}
		}
	}
	if bearer != "" {
		claims, err := s.deps.Tokens.Verify(ctx, bearer)
		if err != nil {
			reason := accesstoken.Reason(err)
			if reason == "key_lookup" || reason == "" {
				s.log.Error("sip token verification failed", "error", err)
				s.respond(tx, req, 500, "Server Internal Error")
				return principal{}, false
			}
			return fail(401, "Invalid Token ("+reason+")",
				sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="invalid_token"`, quote(s.cfg.Realm))))
		}
		if req.Method == sip.MESSAGE {
			// A client may message with either grant: it is reachable, or it may call out.
			if !claims.Grants.IncomingAllowed() && claims.Grants.OutgoingApplication() == "" {
				return fail(403, "Token Grants Neither Incoming Nor Outgoing",
					sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="insufficient_scope"`, quote(s.cfg.Realm))))
			}
		} else if req.Method == sip.INVITE {
			// Placing a call needs the outgoing grant; being reachable needs incoming.
			if claims.Grants.OutgoingApplication() == "" {
				return fail(403, "Token Does Not Allow Outgoing Calls",
					sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="insufficient_scope"`, quote(s.cfg.Realm))))
			}
		} else if !claims.Grants.IncomingAllowed() {
			return fail(403, "Token Does Not Allow Incoming Calls",
				sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="insufficient_scope"`, quote(s.cfg.Realm))))
		}
		if !validIdentity(claims.Grants.Identity) {
			return fail(403, "Token Has No Valid Identity")
		}
		return principal{AccountSid: claims.AccountSid, Identity: ClientIdentity(claims.Grants.Identity), Bearer: true,
			OutgoingApp: claims.Grants.OutgoingApplication()}, true
	}
	if digest == nil {
		s.challenge(req, tx, false)
		return principal{}, false
	}
	if digest["realm"] != s.cfg.Realm {
		s.challenge(req, tx, false)
		return principal{}, false
	}
	if u := digest["uri"]; !strings.EqualFold(strings.TrimSpace(u), req.Recipient.String()) {
		var parsed sip.Uri
		// Some clients (SIPp) put the address they sent to in the digest uri.
		perr := sip.ParseUri(u, &parsed)
		sameURI := strings.EqualFold(parsed.Host, req.Recipient.Host) && parsed.Port == req.Recipient.Port
		if perr != nil || !sameURI && !s.isOurAddress(parsed.Host, parsed.Port) {
			s.log.Info("sip digest uri mismatch", "uri", u, "request_uri", req.Recipient.String())
			return fail(400, "Digest URI Does Not Match Request-URI")
		}
	}
	username := digest["username"]
	cred, err := s.credential(ctx, domain, username, now)
	switch {
	case errors.Is(err, presence.ErrUnknownDomain):
		return fail(403, "Domain Not Served")
	case errors.Is(err, presence.ErrRegistrationDisabled):
		return fail(403, "Registration Disabled")
	case errors.Is(err, presence.ErrUnknownUser):
		return fail(403, "Forbidden")
	case err != nil:
		s.log.Error("sip credential lookup failed", "domain", domain, "error", err)
		s.respond(tx, req, 500, "Server Internal Error")
		return principal{}, false
	}
	err = s.nonces.verifyDigest(digest, cred, digestRequest{Method: string(req.Method), Realm: s.cfg.Realm, Now: now})
	switch {
	case err == nil:
	case errors.Is(err, errDigestStale), errors.Is(err, errDigestNonce):
		// Right password with an old nonce, or a nonce from before a restart:
		// let the client retry without asking its user.
		s.challenge(req, tx, true)
		return principal{}, false
	case errors.Is(err, errDigestReplay):
		return fail(403, "Nonce Replayed")
	case errors.Is(err, errDigestParams), errors.Is(err, errDigestAlgorithm):
		return fail(400, "Bad Digest Credentials")
	default:
		return fail(403, "Forbidden")
	}
	return principal{AccountSid: cred.AccountSid, Identity: SIPIdentity(username, domain), Domain: strings.ToLower(domain), Username: username}, true
}

// isOurAddress reports whether host:port (an IP literal) is one of our listeners.
func (s *Server) isOurAddress(host string, port int) bool {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	s.mu.Lock()
	listeners := s.listenAddrs
	s.mu.Unlock()
	for _, l := range listeners {
		lp := int(l.Port())
		if (port == lp || port == 0 && lp == 5060) && (l.Addr().IsUnspecified() || l.Addr() == ip) {
			return true
		}
	}
	return false
}

// challenge answers 401 with one Digest challenge per configured algorithm.
func (s *Server) challenge(req *sip.Request, tx responder, stale bool) {
	nonce := s.nonces.issue(s.now())
	hdrs := make([]sip.Header, 0, len(s.cfg.DigestAlgorithms))
	for _, alg := range s.cfg.DigestAlgorithms {
		hdrs = append(hdrs, sip.NewHeader("WWW-Authenticate", challenge(s.cfg.Realm, nonce, alg, stale)))
	}
	s.respond(tx, req, 401, "Unauthorized", hdrs...)
}

func headerParam(p sip.HeaderParams, name string) (string, bool) {
	for _, kv := range p {
		if strings.EqualFold(kv.K, name) {
			return kv.V, true
		}
	}
	return "", false
}

// handleRegister is the RFC 3261 §10.3 registrar.
func (s *Server) handleRegister(req *sip.Request, tx responder) {
	ctx := requestContext()
	defer ctx.cancel()
	to := req.To()
	domain := strings.ToLower(to.Address.Host)
	p, ok := s.authenticate(ctx, req, tx, domain)
	if !ok {
		return
	}
	if !p.Bearer && to.Address.User != p.Username {
		s.respond(tx, req, 403, "To Does Not Match Username")
		return
	}
	var expHdr = -1
	if h := req.GetHeader("expires"); h != nil {
		v, _ := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32) // validated
		expHdr = int(min(v, 1<<31))
	}
	var contacts []*sip.ContactHeader
	for _, h := range req.GetHeaders("contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			s.respond(tx, req, 400, "Invalid Contact")
			return
		}
		contacts = append(contacts, c)
	}
	now := s.now()
	transport, flow := requestFlow(req)
	u := presence.Update{AccountSid: p.AccountSid, Identity: p.Identity, CallID: string(*req.CallID()), CSeq: req.CSeq().SeqNo, Now: now}
	ua := ""
	if h := req.GetHeader("user-agent"); h != nil {
		ua = h.Value()
	}
	local := ""
	if a := s.Addr(transport); a != nil {
		local = a.String()
	}
	for _, c := range contacts {
		if c.Address.Wildcard {
			if len(contacts) != 1 || expHdr != 0 {
				s.respond(tx, req, 400, "Wildcard Contact Needs Expires 0 And No Other Contact")
				return
			}
			u.RemoveAll = true
			break
		}
		exp := s.cfg.DefaultExpires
		if v, ok := headerParam(c.Params, "expires"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil {
				s.respond(tx, req, 400, "Invalid Contact Expires")
				return
			}
			exp = int(min(n, 1<<31))
		} else if expHdr >= 0 {
			exp = expHdr
		}
		if exp != 0 && exp < s.cfg.MinExpires {
			s.respond(tx, req, 423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(s.cfg.MinExpires)))
			return
		}
		exp = min(exp, s.cfg.MaxExpires)
		var q float64
		if v, ok := headerParam(c.Params, "q"); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				s.respond(tx, req, 400, "Invalid q Value")
				return
			}
			q = f
		}
		uri := c.Address.String()
		b := presence.Binding{Key: uri, Contact: uri, Q: q, Expires: now.Add(time.Duration(exp) * time.Second),
			Transport: transport, Source: req.Source(), Local: local, FlowID: flow, UserAgent: ua}
		if inst, ok := headerParam(c.Params, "+sip.instance"); ok {
			b.InstanceID = strings.Trim(inst, `"`)
			if v, ok := headerParam(c.Params, "reg-id"); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					s.respond(tx, req, 400, "Invalid reg-id")
					return
				}
				b.RegID = n
			}
			b.Key = b.InstanceID + ";reg-id=" + strconv.Itoa(b.RegID)
		}
		u.Contacts = append(u.Contacts, b)
	}
	var bindings []presence.Binding
	var err error
	if len(contacts) == 0 {
		bindings, err = s.deps.Registry.Bindings(ctx, p.AccountSid, p.Identity)
	} else {
		bindings, err = s.deps.Registry.Apply(ctx, u)
	}
	switch {
	case errors.Is(err, presence.ErrOutOfOrder):
		s.respond(tx, req, 500, "Request Out Of Order", sip.NewHeader("Retry-After", "1"))
		return
	case errors.Is(err, presence.ErrTooManyBindings):
		s.respond(tx, req, 403, "Too Many Bindings")
		return
	case err != nil:
		s.log.Error("sip registrar", "identity", p.Identity, "error", err)
		s.respond(tx, req, 500, "Server Internal Error")
		return
	}
	if flow != "" && !s.flowAlive(flow) {
		// The connection closed while we were working: its bindings are gone.
		_ = s.deps.Registry.DropFlow(ctx, flow)
	}
	if s.deps.Registered != nil && len(contacts) > 0 && !u.RemoveAll {
		s.deps.Registered(p.AccountSid, u.CallID+":"+strconv.FormatUint(uint64(u.CSeq), 10))
	}
	hdrs := make([]sip.Header, 0, len(bindings)+1)
	for _, b := range bindings {
		v := "<" + b.Contact + ">;expires=" + strconv.Itoa(int(b.Remaining(now).Seconds()))
		if b.Q > 0 {
			v += ";q=" + strconv.FormatFloat(b.Q, 'f', -1, 64)
		}
		if b.InstanceID != "" {
			v += ";+sip.instance=" + quote(b.InstanceID)
			if b.RegID > 0 {
				v += ";reg-id=" + strconv.Itoa(b.RegID)
			}
		}
		hdrs = append(hdrs, sip.NewHeader("Contact", v))
	}
	hdrs = append(hdrs, sip.NewHeader("Date", s.dateValue(now)))
	s.respond(tx, req, 200, "OK", hdrs...)
}
