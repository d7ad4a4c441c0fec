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
	"github.com/parleyhq/parley/signaling/sip/internal/reqctx"
	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
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

// authRequest is what authentication reads of a request.
type authRequest struct {
	method        string
	source        string // ip:port
	authorization []string
	// The Request-URI, as sipgo writes it, and its host and port: the
	// Digest uri must name it.
	recipient     string
	recipientHost string
	recipientPort int
}

func authRequestOf(req *sip.Request) authRequest {
	hdrs := req.GetHeaders("authorization")
	authz := make([]string, len(hdrs))
	for i, h := range hdrs {
		authz[i] = h.Value()
	}
	return authRequest{method: string(req.Method), source: req.Source(), authorization: authz,
		recipient: req.Recipient.String(), recipientHost: req.Recipient.Host, recipientPort: req.Recipient.Port}
}

// authenticate checks the request's Authorization against domain (Digest)
// or an access token (Bearer). When it returns false it has responded.
func (s *Server) authenticate(ctx context.Context, req *sip.Request, tx responder, domain string) (principal, bool) {
	return s.authenticateWith(ctx, authRequestOf(req), domain, func(code int, reason string, extra ...sip.Header) {
		s.respond(tx, req, code, reason, extra...)
	})
}

// authenticateWith is authenticate for a request read by any parser; reply
// answers it.
func (s *Server) authenticateWith(ctx context.Context, req authRequest, domain string, reply func(code int, reason string, extra ...sip.Header)) (principal, bool) {
	now := s.now()
	ip := req.source
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	if s.limiter.blocked(ip, now) {
		reply(403, "Too Many Failed Authentications",
			sip.NewHeader("Retry-After", strconv.Itoa(int(s.cfg.AuthFailureWindow.Seconds()))))
		return principal{}, false
	}
	fail := func(code int, reason string, extra ...sip.Header) (principal, bool) {
		s.limiter.fail(ip, now)
		s.log.Info("sip authentication failed", "method", req.method, "source", req.source, "reason", reason)
		reply(code, reason, extra...)
		return principal{}, false
	}
	if len(req.authorization) == 0 {
		s.challenge(reply, false)
		return principal{}, false
	}
	var digest map[string]string
	var bearer string
	for _, v := range req.authorization {
		a, err := parseAuthorization(v)
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
				reply(500, "Server Internal Error")
				return principal{}, false
			}
			return fail(401, "Invalid Token ("+reason+")",
				sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="invalid_token"`, sipmsg.Quote(s.cfg.Realm))))
		}
		if req.method == string(sip.MESSAGE) {
			// A client may message with either grant: it is reachable, or it may call out.
			if !claims.Grants.IncomingAllowed() && claims.Grants.OutgoingApplication() == "" {
				return fail(403, "Token Grants Neither Incoming Nor Outgoing",
					sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="insufficient_scope"`, sipmsg.Quote(s.cfg.Realm))))
			}
		} else if req.method == string(sip.INVITE) {
			// Placing a call needs the outgoing grant; being reachable needs incoming.
			if claims.Grants.OutgoingApplication() == "" {
				return fail(403, "Token Does Not Allow Outgoing Calls",
					sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="insufficient_scope"`, sipmsg.Quote(s.cfg.Realm))))
			}
		} else if !claims.Grants.IncomingAllowed() {
			return fail(403, "Token Does Not Allow Incoming Calls",
				sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="insufficient_scope"`, sipmsg.Quote(s.cfg.Realm))))
		}
		if !validIdentity(claims.Grants.Identity) {
			return fail(403, "Token Has No Valid Identity")
		}
		return principal{AccountSid: claims.AccountSid, Identity: ClientIdentity(claims.Grants.Identity), Bearer: true,
			OutgoingApp: claims.Grants.OutgoingApplication()}, true
	}
	if digest == nil {
		s.challenge(reply, false)
		return principal{}, false
	}
	if digest["realm"] != s.cfg.Realm {
		s.challenge(reply, false)
		return principal{}, false
	}
	if u := digest["uri"]; !strings.EqualFold(strings.TrimSpace(u), req.recipient) {
		var parsed sip.Uri
		// Some clients (SIPp) put the address they sent to in the digest uri.
		perr := sip.ParseUri(u, &parsed)
		sameURI := strings.EqualFold(parsed.Host, req.recipientHost) && parsed.Port == req.recipientPort
		if perr != nil || !sameURI && !s.isOurAddress(parsed.Host, parsed.Port) {
			s.log.Info("sip digest uri mismatch", "uri", u, "request_uri", req.recipient)
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
		reply(500, "Server Internal Error")
		return principal{}, false
	}
	err = s.nonces.verifyDigest(digest, cred, digestRequest{Method: req.method, Realm: s.cfg.Realm, Now: now})
	switch {
	case err == nil:
	case errors.Is(err, errDigestStale), errors.Is(err, errDigestNonce):
		// Right password with an old nonce, or a nonce from before a restart:
		// let the client retry without asking its user.
		s.challenge(reply, true)
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
func (s *Server) challenge(reply func(code int, reason string, extra ...sip.Header), stale bool) {
	nonce := s.nonces.issue(s.now())
	hdrs := make([]sip.Header, 0, len(s.cfg.DigestAlgorithms))
	for _, alg := range s.cfg.DigestAlgorithms {
		hdrs = append(hdrs, sip.NewHeader("WWW-Authenticate", challenge(s.cfg.Realm, nonce, alg, stale)))
	}
	reply(401, "Unauthorized", hdrs...)
}

func headerParam(p sip.HeaderParams, name string) (string, bool) {
	for _, kv := range p {
		if strings.EqualFold(kv.K, name) {
			return kv.V, true
		}
	}
	return "", false
}

// regRequest is what the registrar reads of a REGISTER: from sipgo's parse
// (regRequestOf), or straight from a datagram's bytes (parseFastRegister).
type regRequest struct {
	auth           authRequest
	toUser, toHost string
	expires        int // the Expires header; -1 when there is none
	contacts       []regContact
	badContact     bool // a Contact header sipgo could not read as one
	callID         string
	cseq           uint32
	userAgent      string
	transport      string // lower case
	flow           string // reliable transports: the connection

	// How to answer: sipgo's request and its transaction, or (fast) the
	// stateless UDP path's.
	req  *sip.Request
	tx   responder
	fast *fastRegister
}

// regContact is one Contact of a REGISTER.
type regContact struct {
	uri      string // as sipgo writes it
	wildcard bool
	params   sip.HeaderParams
}

func regRequestOf(req *sip.Request, tx responder) regRequest {
	r := regRequest{auth: authRequestOf(req), expires: -1, callID: string(*req.CallID()), cseq: req.CSeq().SeqNo, req: req, tx: tx}
	to := req.To()
	r.toUser, r.toHost = to.Address.User, to.Address.Host
	if h := req.GetHeader("expires"); h != nil {
		v, _ := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32) // validated
		r.expires = int(min(v, 1<<31))
	}
	for _, h := range req.GetHeaders("contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			r.badContact = true
			continue
		}
		r.contacts = append(r.contacts, regContact{uri: c.Address.String(), wildcard: c.Address.Wildcard, params: c.Params})
	}
	if h := req.GetHeader("user-agent"); h != nil {
		r.userAgent = h.Value()
	}
	r.transport, r.flow = requestFlow(req)
	return r
}

// reply answers r.
func (s *Server) reply(r *regRequest, code int, reason string, extra ...sip.Header) {
	if r.fast != nil {
		r.tx.(*statelessTx).replyFast(r.fast, code, reason, extra)
		return
	}
	s.respond(r.tx, r.req, code, reason, extra...)
}

// handleRegister is the RFC 3261 §10.3 registrar, for requests sipgo parsed.
func (s *Server) handleRegister(req *sip.Request, tx responder) {
	r := regRequestOf(req, tx)
	s.register(&r)
}

// register is the RFC 3261 §10.3 registrar.
func (s *Server) register(r *regRequest) {
	ctx := reqctx.New()
	defer ctx.Cancel()
	domain := strings.ToLower(r.toHost)
	p, ok := s.authenticateWith(ctx, r.auth, domain, func(code int, reason string, extra ...sip.Header) {
		s.reply(r, code, reason, extra...)
	})
	if !ok {
		return
	}
	if !p.Bearer && r.toUser != p.Username {
		s.reply(r, 403, "To Does Not Match Username")
		return
	}
	if r.badContact {
		s.reply(r, 400, "Invalid Contact")
		return
	}
	expHdr, contacts := r.expires, r.contacts
	now := s.now()
	transport, flow := r.transport, r.flow
	u := presence.Update{AccountSid: p.AccountSid, Identity: p.Identity, CallID: r.callID, CSeq: r.cseq, Now: now}
	ua := r.userAgent
	local := ""
	if a := s.Addr(transport); a != nil {
		local = a.String()
	}
	for _, c := range contacts {
		if c.wildcard {
			if len(contacts) != 1 || expHdr != 0 {
				s.reply(r, 400, "Wildcard Contact Needs Expires 0 And No Other Contact")
				return
			}
			u.RemoveAll = true
			break
		}
		exp := s.cfg.DefaultExpires
		if v, ok := headerParam(c.params, "expires"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil {
				s.reply(r, 400, "Invalid Contact Expires")
				return
			}
			exp = int(min(n, 1<<31))
		} else if expHdr >= 0 {
			exp = expHdr
		}
		if exp != 0 && exp < s.cfg.MinExpires {
			s.reply(r, 423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(s.cfg.MinExpires)))
			return
		}
		exp = min(exp, s.cfg.MaxExpires)
		var q float64
		if v, ok := headerParam(c.params, "q"); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				s.reply(r, 400, "Invalid q Value")
				return
			}
			q = f
		}
		b := presence.Binding{Key: c.uri, Contact: c.uri, Q: q, Expires: now.Add(time.Duration(exp) * time.Second),
			Transport: transport, Source: r.auth.source, Local: local, FlowID: flow, UserAgent: ua}
		if inst, ok := headerParam(c.params, "+sip.instance"); ok {
			b.InstanceID = strings.Trim(inst, `"`)
			if v, ok := headerParam(c.params, "reg-id"); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					s.reply(r, 400, "Invalid reg-id")
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
		s.reply(r, 500, "Request Out Of Order", sip.NewHeader("Retry-After", "1"))
		return
	case errors.Is(err, presence.ErrTooManyBindings):
		s.reply(r, 403, "Too Many Bindings")
		return
	case err != nil:
		s.log.Error("sip registrar", "identity", p.Identity, "error", err)
		s.reply(r, 500, "Server Internal Error")
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
			v += ";+sip.instance=" + sipmsg.Quote(b.InstanceID)
			if b.RegID > 0 {
				v += ";reg-id=" + strconv.Itoa(b.RegID)
			}
		}
		hdrs = append(hdrs, sip.NewHeader("Contact", v))
	}
	hdrs = append(hdrs, sip.NewHeader("Date", s.dateValue(now)))
	s.reply(r, 200, "OK", hdrs...)
}
