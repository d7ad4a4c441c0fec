package registrar

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
	"github.com/parleyhq/parley/signaling/sip/sipauth"
)

// Config holds the registration intervals in seconds, with the SIP
// server's defaults filled in and checked (sip.Config does that).
type Config struct {
	MinExpires     int // shorter → 423
	MaxExpires     int // longer is shortened
	DefaultExpires int // when the client gives none
}

// Deps are the registrar's collaborators.
type Deps struct {
	// Auth authenticates REGISTERs. It is the concrete type, not an
	// interface, so that the reply closure Register hands it stays on the
	// stack: a call through an interface would move it to the heap, once
	// per registration.
	Auth     *sipauth.Authenticator
	Registry presence.Registry
	Logger   *slog.Logger     // default slog.Default()
	Now      func() time.Time // default time.Now
	// Registered, when set, is told of each REGISTER that added or
	// refreshed bindings (usage events); it must not block.
	Registered func(accountSid, key string)
	// Local returns the address of the server's listener on a transport
	// ("udp", "tcp", …), which a binding records ("" when there is none).
	Local func(transport string) string
	// FlowAlive reports whether the connection a binding came on (a flow
	// id, reliable transports) is still open.
	FlowAlive func(flow string) bool
}

// Registrar is the RFC 3261 §10.3 registrar of the SIP front end.
type Registrar struct {
	cfg  Config
	deps Deps
	auth *sipauth.Authenticator
	log  *slog.Logger
	now  func() time.Time
	date atomic.Pointer[httpDate] // the last Date header value, per second
}

// New creates a registrar. Auth, Registry, Local and FlowAlive are required.
func New(cfg Config, deps Deps) (*Registrar, error) {
	if deps.Auth == nil || deps.Registry == nil || deps.Local == nil || deps.FlowAlive == nil {
		return nil, errors.New("registrar: Auth, Registry, Local and FlowAlive are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Registrar{cfg: cfg, deps: deps, auth: deps.Auth, log: deps.Logger, now: deps.Now}, nil
}

// ReplyFunc answers the REGISTER being handled: a sipgo transaction, or the
// stateless UDP path's response renderer (udpreg).
type ReplyFunc func(code int, reason string, extra ...sip.Header)

type httpDate struct {
	sec   int64
	value string
}

// dateValue is now as a Date header value (RFC 3261 §20.17), formatted
// once per second rather than once per response.
func (g *Registrar) dateValue(now time.Time) string {
	sec := now.Unix()
	if d := g.date.Load(); d != nil && d.sec == sec {
		return d.value
	}
	d := &httpDate{sec: sec, value: now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")}
	g.date.Store(d)
	return d.value
}

func headerParam(p sip.HeaderParams, name string) (string, bool) {
	for _, kv := range p {
		if strings.EqualFold(kv.K, name) {
			return kv.V, true
		}
	}
	return "", false
}

// Register is the RFC 3261 §10.3 registrar: it authenticates r, applies its
// Contacts to the registry (RFC 3261 §10.3 rules, RFC 5626 instance and
// reg-id) and answers through reply: 200 listing the bindings, or why not.
// reply is called once and not kept.
func (g *Registrar) Register(ctx context.Context, r *Request, reply ReplyFunc) {
	domain := strings.ToLower(r.ToHost)
	p, ok := g.auth.Authenticate(ctx, r.Auth, domain, sipauth.ReplyFunc(reply))
	if !ok {
		return
	}
	if !p.Bearer && r.ToUser != p.Username {
		reply(403, "To Does Not Match Username")
		return
	}
	if r.BadContact {
		reply(400, "Invalid Contact")
		return
	}
	expHdr, contacts := r.Expires, r.Contacts
	now := g.now()
	transport, flow := r.Transport, r.Flow
	u := presence.Update{AccountSid: p.AccountSid, Identity: p.Identity, CallID: r.CallID, CSeq: r.CSeq, Now: now}
	ua := r.UserAgent
	local := g.deps.Local(transport)
	for _, c := range contacts {
		if c.Wildcard {
			if len(contacts) != 1 || expHdr != 0 {
				reply(400, "Wildcard Contact Needs Expires 0 And No Other Contact")
				return
			}
			u.RemoveAll = true
			break
		}
		exp := g.cfg.DefaultExpires
		if v, ok := headerParam(c.Params, "expires"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil {
				reply(400, "Invalid Contact Expires")
				return
			}
			exp = int(min(n, 1<<31))
		} else if expHdr >= 0 {
			exp = expHdr
		}
		if exp != 0 && exp < g.cfg.MinExpires {
			reply(423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(g.cfg.MinExpires)))
			return
		}
		exp = min(exp, g.cfg.MaxExpires)
		var q float64
		if v, ok := headerParam(c.Params, "q"); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				reply(400, "Invalid q Value")
				return
			}
			q = f
		}
		b := presence.Binding{Key: c.URI, Contact: c.URI, Q: q, Expires: now.Add(time.Duration(exp) * time.Second),
			Transport: transport, Source: r.Auth.Source, Local: local, FlowID: flow, UserAgent: ua}
		if inst, ok := headerParam(c.Params, "+sip.instance"); ok {
			b.InstanceID = strings.Trim(inst, `"`)
			if v, ok := headerParam(c.Params, "reg-id"); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					reply(400, "Invalid reg-id")
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
		bindings, err = g.deps.Registry.Bindings(ctx, p.AccountSid, p.Identity)
	} else {
		bindings, err = g.deps.Registry.Apply(ctx, u)
	}
	switch {
	case errors.Is(err, presence.ErrOutOfOrder):
		reply(500, "Request Out Of Order", sip.NewHeader("Retry-After", "1"))
		return
	case errors.Is(err, presence.ErrTooManyBindings):
		reply(403, "Too Many Bindings")
		return
	case err != nil:
		g.log.Error("sip registrar", "identity", p.Identity, "error", err)
		reply(500, "Server Internal Error")
		return
	}
	if flow != "" && !g.deps.FlowAlive(flow) {
		// The connection closed while we were working: its bindings are gone.
		_ = g.deps.Registry.DropFlow(ctx, flow)
	}
	if g.deps.Registered != nil && len(contacts) > 0 && !u.RemoveAll {
		g.deps.Registered(p.AccountSid, u.CallID+":"+strconv.FormatUint(uint64(u.CSeq), 10))
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
	hdrs = append(hdrs, sip.NewHeader("Date", g.dateValue(now)))
	reply(200, "OK", hdrs...)
}
