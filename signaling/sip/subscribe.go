package sip

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/pidf"
	"github.com/parleyhq/parley/signaling/sip/internal/reqctx"
)

// subscription is one presence watcher dialog (RFC 6665, RFC 3856).
type subscription struct {
	key        string // Call-ID | local tag
	accountSid string
	watcherID  string   // the watcher's identity, who may refresh it
	targets    []string // identities whose presence is reported
	entity     sip.Uri  // the presentity (From of our NOTIFYs)
	callID     string
	localTag   string
	remoteTag  string
	watcher    sip.Uri // To of our NOTIFYs
	route      presence.Binding

	sendMu  sync.Mutex // one NOTIFY at a time, in CSeq order
	mu      sync.Mutex
	cseq    uint32
	expires time.Time
	ended   bool
}

type subscriptions struct {
	s  *Server
	mu sync.Mutex
	m  map[string]*subscription
}

func newSubscriptions(s *Server) *subscriptions {
	return &subscriptions{s: s, m: map[string]*subscription{}}
}

// Count returns the number of active presence subscriptions.
func (s *Server) Subscriptions() int {
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	return len(s.subs.m)
}

func eventPackage(req *sip.Request) string {
	h := req.GetHeader("event")
	if h == nil {
		h = req.GetHeader("o")
	}
	if h == nil {
		return ""
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	return strings.ToLower(strings.TrimSpace(v))
}

func acceptsPIDF(req *sip.Request) bool {
	hs := req.GetHeaders("accept")
	if len(hs) == 0 {
		return true
	}
	for _, h := range hs {
		for _, part := range strings.Split(h.Value(), ",") {
			mt, _, _ := strings.Cut(part, ";")
			switch strings.ToLower(strings.TrimSpace(mt)) {
			case pidf.ContentType, "*/*", "application/*":
				return true
			}
		}
	}
	return false
}

func (m *subscriptions) handleSubscribe(req *sip.Request, tx responder) {
	s := m.s
	if ev := eventPackage(req); ev != "presence" {
		s.respond(tx, req, 489, "Bad Event", sip.NewHeader("Allow-Events", "presence"))
		return
	}
	if !acceptsPIDF(req) {
		s.respond(tx, req, 406, "Not Acceptable", sip.NewHeader("Accept", pidf.ContentType))
		return
	}
	ctx := reqctx.New()
	defer ctx.Cancel()
	from := req.From()
	p, ok := s.authenticate(ctx, req, tx, strings.ToLower(from.Address.Host))
	if !ok {
		return
	}
	exp := s.cfg.DefaultSubscribeExpires
	if h := req.GetHeader("expires"); h != nil {
		v, _ := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		exp = int(min(v, 1<<31))
	}
	if exp != 0 && exp < s.cfg.MinSubscribeExpires {
		s.respond(tx, req, 423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(s.cfg.MinSubscribeExpires)))
		return
	}
	exp = min(exp, s.cfg.MaxSubscribeExpires)
	now := s.now()
	callID := string(*req.CallID())
	remoteTag, _ := from.Params.Get("tag")
	transport, flow := requestFlow(req)

	var sub *subscription
	res := s.response(req, 200, "OK")
	if toTag, ok := req.To().Params.Get("tag"); ok {
		m.mu.Lock()
		sub = m.m[callID+"|"+toTag]
		m.mu.Unlock()
		if sub == nil || sub.remoteTag != remoteTag {
			s.respond(tx, req, 481, "Subscription Does Not Exist")
			return
		}
		if sub.accountSid != p.AccountSid || sub.watcherID != p.Identity {
			s.respond(tx, req, 403, "Not The Subscriber")
			return
		}
	} else {
		if remoteTag == "" {
			s.respond(tx, req, 400, "From Has No Tag")
			return
		}
		user := req.Recipient.User
		if user == "" {
			s.respond(tx, req, 404, "Not Found")
			return
		}
		localTag, _ := res.To().Params.Get("tag")
		entity := sip.Uri{Scheme: "sip", User: user, Host: strings.ToLower(req.Recipient.Host)}
		sub = &subscription{
			key: callID + "|" + localTag, accountSid: p.AccountSid, watcherID: p.Identity,
			targets: []string{presence.SIPIdentity(user, req.Recipient.Host), presence.ClientIdentity(user)},
			entity:  entity, callID: callID, localTag: localTag, remoteTag: remoteTag,
			watcher: from.Address,
		}
	}
	target := from.Address
	if c := req.Contact(); c != nil {
		target = c.Address
	}
	sub.mu.Lock()
	sub.expires = now.Add(time.Duration(exp) * time.Second)
	sub.route = presence.Binding{Contact: target.String(), Transport: transport, Source: req.Source(), FlowID: flow}
	sub.mu.Unlock()
	if exp > 0 {
		m.mu.Lock()
		m.m[sub.key] = sub
		m.mu.Unlock()
	} else {
		m.remove(sub)
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(exp)))
	res.AppendHeader(&sip.ContactHeader{Address: s.contactFor(transport)})
	s.send(tx, res)
	// The immediate NOTIFY (RFC 6665 §4.2.1.2); a final one for Expires 0.
	state := "active;expires=" + strconv.Itoa(exp)
	if exp == 0 {
		state = "terminated;reason=timeout"
	}
	go m.notify(sub, state)
}

func (m *subscriptions) remove(sub *subscription) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m[sub.key] == sub {
		delete(m.m, sub.key)
		return true
	}
	return false
}

// status combines the presence of the subscription's targets.
func (m *subscriptions) status(ctx context.Context, sub *subscription) presence.Status {
	best := presence.Offline
	for _, id := range sub.targets {
		p, err := m.s.deps.Registry.Get(ctx, sub.accountSid, id)
		if err != nil {
			m.s.log.Error("presence lookup for NOTIFY", "identity", id, "error", err)
			continue
		}
		switch {
		case p.Status == presence.Available:
			return presence.Available
		case p.Status == presence.Busy:
			best = presence.Busy
		}
	}
	return best
}

// notify sends one NOTIFY with the current state. state is the
// Subscription-State value; the expires parameter of active states is
// recomputed at send time.
func (m *subscriptions) notify(sub *subscription, state string) {
	sub.sendMu.Lock()
	defer sub.sendMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	now := m.s.now()
	sub.mu.Lock()
	if sub.ended {
		sub.mu.Unlock()
		return
	}
	terminated := strings.HasPrefix(state, "terminated")
	if terminated {
		sub.ended = true
	} else {
		state = "active;expires=" + strconv.Itoa(int(sub.expires.Sub(now).Seconds()))
	}
	sub.cseq++
	cseq := sub.cseq
	route := sub.route
	sub.mu.Unlock()

	st := m.status(ctx, sub)
	basic := pidf.Open
	if st == presence.Offline {
		basic = pidf.Closed
	}
	body, err := pidf.Encode(pidf.Document{Entity: sub.entity.String(), Tuples: []pidf.Tuple{{ID: "parley", Basic: basic, Note: string(st)}}})
	if err != nil {
		m.s.log.Error("pidf encode", "error", err)
		return
	}
	var target sip.Uri
	if err := sip.ParseUri(route.Contact, &target); err != nil {
		m.s.log.Info("subscription contact unusable", "contact", route.Contact, "error", err)
		m.remove(sub)
		return
	}
	req := sip.NewRequest(sip.NOTIFY, target)
	fromH := &sip.FromHeader{Address: sub.entity, Params: sip.NewParams()}
	fromH.Params.Add("tag", sub.localTag)
	toH := &sip.ToHeader{Address: sub.watcher, Params: sip.NewParams()}
	toH.Params.Add("tag", sub.remoteTag)
	callID := sip.CallIDHeader(sub.callID)
	req.AppendHeader(fromH)
	req.AppendHeader(toH)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.NOTIFY})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", pidf.ContentType))
	req.SetBody(body)
	res, err := m.s.Do(ctx, route, req)
	if err != nil {
		m.s.log.Info("NOTIFY failed; ending subscription", "watcher", sub.watcherID, "error", err)
		m.remove(sub)
		return
	}
	if res.StatusCode == 481 || res.StatusCode >= 300 && !terminated {
		m.s.log.Info("NOTIFY refused; ending subscription", "watcher", sub.watcherID, "status", res.StatusCode)
		m.remove(sub)
	}
}

// watch forwards presence events to the subscriptions that watch them.
func (m *subscriptions) watch() (stop func()) {
	busSub := m.s.deps.Registry.Events().Subscribe(4096, nil)
	go func() {
		for e := range busSub.C {
			m.mu.Lock()
			var hit []*subscription
			for _, sub := range m.m {
				if sub.accountSid != e.AccountSid {
					continue
				}
				for _, id := range sub.targets {
					if id == e.Identity {
						hit = append(hit, sub)
						break
					}
				}
			}
			m.mu.Unlock()
			for _, sub := range hit {
				go m.notify(sub, "active")
			}
		}
	}()
	return busSub.Close
}

// expire ends subscriptions whose time is up with a terminated NOTIFY.
func (m *subscriptions) expire(ctx context.Context, now time.Time) {
	m.mu.Lock()
	var done []*subscription
	for k, sub := range m.m {
		sub.mu.Lock()
		if !sub.expires.After(now) {
			done = append(done, sub)
			delete(m.m, k)
		}
		sub.mu.Unlock()
	}
	m.mu.Unlock()
	for _, sub := range done {
		go m.notify(sub, "terminated;reason=timeout")
	}
}

// dropFlow forgets subscriptions whose connection closed.
func (m *subscriptions) dropFlow(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, sub := range m.m {
		sub.mu.Lock()
		if sub.route.FlowID == id {
			sub.ended = true
			delete(m.m, k)
		}
		sub.mu.Unlock()
	}
}
