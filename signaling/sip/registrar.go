package sip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/sip/internal/reqctx"
	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
	"github.com/parleyhq/parley/signaling/sip/sipauth"
)

// principal is an authenticated user.
type principal = sipauth.Principal

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

// authenticate checks the request's Authorization against domain (Digest)
// or an access token (Bearer). When it returns false it has responded.
func (s *Server) authenticate(ctx context.Context, req *sip.Request, tx responder, domain string) (principal, bool) {
	return s.auth.Authenticate(ctx, sipauth.RequestOf(req), domain, func(code int, reason string, extra ...sip.Header) {
		s.respond(tx, req, code, reason, extra...)
	})
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
	auth           sipauth.Request
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
	r := regRequest{auth: sipauth.RequestOf(req), expires: -1, callID: string(*req.CallID()), cseq: req.CSeq().SeqNo, req: req, tx: tx}
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
	p, ok := s.auth.Authenticate(ctx, r.auth, domain, func(code int, reason string, extra ...sip.Header) {
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
			Transport: transport, Source: r.auth.Source, Local: local, FlowID: flow, UserAgent: ua}
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
