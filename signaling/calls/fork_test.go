package calls

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/twiml"
)

// These tests drive the Forker with in-process ringers that script what each
// binding does; the real transports ring through it in signaling/sip
// (TestForkFirstAnswerWinsOthersCancelled …) and signaling/webrtc.

// ringLeg is the leg an in-process ringer answers with.
type ringLeg struct {
	key     string
	hungUp  chan struct{}
	done    chan struct{}
	hangOne sync.Once
}

func newRingLeg(key string) *ringLeg {
	return &ringLeg{key: key, hungUp: make(chan struct{}), done: make(chan struct{})}
}

func (l *ringLeg) Offer() []media.RTPCodec { return nil }
func (l *ringLeg) Answer(context.Context, []media.RTPCodec) (LegMedia, error) {
	return LegMedia{}, nil
}
func (l *ringLeg) Ringing(context.Context) error             { return nil }
func (l *ringLeg) Reject(context.Context, int, string) error { return nil }
func (l *ringLeg) Hangup(context.Context) error {
	l.hangOne.Do(func() { close(l.hungUp); close(l.done) })
	return nil
}
func (l *ringLeg) Done() <-chan struct{} { return l.done }
func (l *ringLeg) Digits() <-chan byte   { return nil }

// behaviour is what a scripted binding does when rung.
type behaviour struct {
	after  time.Duration // when it answers or refuses
	refuse int           // the status it refuses with; 0 answers
	fail   bool          // an error that is not a refusal
	never  bool          // rings until cancelled
	late   bool          // answers even when cancelled meanwhile
}

// scriptRinger rings bindings by key as scripted, and records the requests.
type scriptRinger struct {
	script map[string]behaviour
	trunk  presence.Binding // the Carrier's binding for numbers

	mu   sync.Mutex
	reqs []RingRequest
	legs map[string]*ringLeg
}

func newScriptRinger(script map[string]behaviour) *scriptRinger {
	return &scriptRinger{script: script, legs: map[string]*ringLeg{}}
}

func (r *scriptRinger) Ring(ctx context.Context, req RingRequest) (Leg, LegMedia, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	b, ok := r.script[req.Binding.Key]
	if !ok {
		return nil, LegMedia{}, fmt.Errorf("no script for %q", req.Binding.Key)
	}
	req.Ringing()
	if b.never {
		<-ctx.Done()
		return nil, LegMedia{}, &RingRefused{Status: 487, Reason: "cancelled"}
	}
	select {
	case <-time.After(b.after):
	case <-ctx.Done():
		if !b.late {
			return nil, LegMedia{}, &RingRefused{Status: 487, Reason: "cancelled"}
		}
		time.Sleep(b.after) // the answer was already on its way
	}
	switch {
	case b.fail:
		return nil, LegMedia{}, errors.New("transport failure")
	case b.refuse != 0:
		return nil, LegMedia{}, &RingRefused{Status: b.refuse}
	}
	l := newRingLeg(req.Binding.Key)
	r.mu.Lock()
	r.legs[req.Binding.Key] = l
	r.mu.Unlock()
	return l, LegMedia{EventPT: 101}, nil
}

func (r *scriptRinger) Binding(accountSid, number string) presence.Binding {
	b := r.trunk
	b.AccountSid, b.Identity = accountSid, number
	return b
}

func (r *scriptRinger) leg(key string) *ringLeg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.legs[key]
}

func (r *scriptRinger) requests() []RingRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RingRequest(nil), r.reqs...)
}

// extraTargets widens <Client>name to the SIP user name of pbx.test.
type extraTargets struct{}

func (extraTargets) ClientIdentities(_ context.Context, _, name string) ([]string, error) {
	return []string{presence.SIPIdentity(name, "pbx.test")}, nil
}

func sipIdentity(uri string) (string, error) {
	id, err := presence.ParseIdentity(uri)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

const forkAccount = "AC0000000000000000000000000000000f"

// forkEnv is a presence registry with bindings and a forker over it.
type forkEnv struct {
	t   *testing.T
	reg *presence.Memory
	f   *Forker

	mu     sync.Mutex
	marked []string // identities SetBusy was called for
}

// SetBusy records whom the forker marks, then marks them.
func (e *forkEnv) SetBusy(ctx context.Context, accountSid, identity string, busy bool) error {
	e.mu.Lock()
	e.marked = append(e.marked, fmt.Sprintf("%s=%v", identity, busy))
	e.mu.Unlock()
	return e.reg.SetBusy(ctx, accountSid, identity, busy)
}

func (e *forkEnv) Bindings(ctx context.Context, accountSid, identity string) ([]presence.Binding, error) {
	return e.reg.Bindings(ctx, accountSid, identity)
}

func (e *forkEnv) markedBusy() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.marked...)
}

func newForkEnv(t *testing.T) *forkEnv {
	reg, err := presence.NewMemory(context.Background(), presence.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e := &forkEnv{t: t, reg: reg}
	if e.f, err = NewForker(ForkerDeps{Bindings: e, Targets: extraTargets{}, SIPIdentity: sipIdentity}); err != nil {
		t.Fatal(err)
	}
	return e
}

// bind gives identity a binding key on transport.
func (e *forkEnv) bind(identity, key, transport string) {
	e.t.Helper()
	now := time.Now()
	_, err := e.reg.Apply(context.Background(), presence.Update{AccountSid: forkAccount, Identity: identity, CallID: key, CSeq: 1, Now: now,
		Contacts: []presence.Binding{{Key: key, Contact: "sip:" + key + "@127.0.0.1", Expires: now.Add(time.Hour), Transport: transport, FlowID: "flow-" + key}}})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *forkEnv) status(identity string) presence.Status {
	p, err := e.reg.Get(context.Background(), forkAccount, identity)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Status
}

func (e *forkEnv) dial(ctx context.Context, timeout time.Duration, targets ...twiml.DialTarget) (DialResult, int, error) {
	rang := 0
	res, err := e.f.Dial(ctx, DialRequest{Call: &Call{Sid: "CA1", AccountSid: forkAccount, From: "client:caller"}, Targets: targets,
		Timeout: timeout, Ringing: func() { rang++ }})
	return res, rang, err
}

func TestForkOutcomes(t *testing.T) {
	alice := []twiml.DialTarget{&twiml.Client{Identity: "alice"}}
	for _, tc := range []struct {
		name   string
		script map[string]behaviour
		want   DialStatus
		winner string
	}{
		{"busy everywhere", map[string]behaviour{"a1": {refuse: 486}, "a2": {refuse: 603}}, DialBusy, ""},
		{"busy and unavailable", map[string]behaviour{"a1": {refuse: 486}, "a2": {refuse: 480}}, DialFailed, ""},
		{"busy and a failure", map[string]behaviour{"a1": {refuse: 600}, "a2": {fail: true}}, DialFailed, ""},
		{"nobody answers", map[string]behaviour{"a1": {never: true}, "a2": {never: true}}, DialNoAnswer, ""},
		{"one answers, one refuses", map[string]behaviour{"a1": {refuse: 486, after: time.Millisecond}, "a2": {after: 20 * time.Millisecond}}, DialAnswered, "a2"},
		{"first answer wins", map[string]behaviour{"a1": {after: 10 * time.Millisecond}, "a2": {never: true}}, DialAnswered, "a1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newForkEnv(t)
			e.bind("client:alice", "a1", presence.TransportUDP)
			e.bind("client:alice", "a2", presence.TransportTCP)
			r := newScriptRinger(tc.script)
			e.f.SetRinger(presence.TransportUDP, r)
			e.f.SetRinger("TCP", r) // transports are matched case-insensitively
			res, rang, err := e.dial(context.Background(), 300*time.Millisecond, alice...)
			if err != nil || res.Status != tc.want || rang != 1 {
				t.Fatalf("dial: %+v, %v, ringing reported %d times; want %s once", res, err, rang, tc.want)
			}
			reqs := r.requests()
			if len(reqs) != 2 || reqs[0].CallSid == "" || reqs[0].CallSid == reqs[1].CallSid || reqs[0].From != "client:caller" {
				t.Fatalf("requests: %+v", reqs)
			}
			for _, q := range reqs {
				if len(q.Offer) != 2 || !q.Offer[0].Is("PCMU") || !q.Offer[1].Is("telephone-event") {
					t.Fatalf("default offer: %+v", q.Offer)
				}
			}
			if tc.winner == "" {
				if res.Leg != nil || e.status("client:alice") != presence.Available {
					t.Fatalf("leg %v, alice %s", res.Leg, e.status("client:alice"))
				}
				return
			}
			l := r.leg(tc.winner)
			if res.Leg != Leg(l) || res.Media.EventPT != 101 {
				t.Fatalf("winner %+v, want %s's leg", res, tc.winner)
			}
			for _, q := range reqs {
				if q.Binding.Key == tc.winner && q.CallSid != res.CallSid {
					t.Fatalf("DialCallSid %s, rung as %s", res.CallSid, q.CallSid)
				}
			}
			if s := e.status("client:alice"); s != presence.Busy {
				t.Fatalf("alice %s while in the call", s)
			}
			l.Hangup(context.Background())
			waitUntil(t, "alice available again", func() bool { return e.status("client:alice") == presence.Available })
			if m := e.markedBusy(); len(m) != 2 || m[0] != "client:alice=true" || m[1] != "client:alice=false" {
				t.Fatalf("marked busy: %v", m)
			}
		})
	}
}

// An attempt that answers after another won is hung up, and one that
// answers after the caller left is too (with the winner's own leg).
func TestForkHangsUpLateAnswers(t *testing.T) {
	e := newForkEnv(t)
	e.bind("client:alice", "a1", presence.TransportUDP)
	e.bind("client:alice", "a2", presence.TransportUDP)
	r := newScriptRinger(map[string]behaviour{"a1": {after: 5 * time.Millisecond}, "a2": {after: 50 * time.Millisecond, late: true}})
	e.f.SetRinger(presence.TransportUDP, r)
	res, _, err := e.dial(context.Background(), time.Second, &twiml.Client{Identity: "alice"})
	if err != nil || res.Status != DialAnswered || res.Leg != Leg(r.leg("a1")) {
		t.Fatalf("dial: %+v, %v", res, err)
	}
	waitUntil(t, "the late answer hung up", func() bool {
		l := r.leg("a2")
		if l == nil {
			return false
		}
		select {
		case <-l.hungUp:
			return true
		default:
			return false
		}
	})
	select {
	case <-r.leg("a1").hungUp:
		t.Fatal("the winner was hung up")
	default:
	}

	// The caller leaves while a binding that does not notice is answering.
	e2 := newForkEnv(t)
	e2.bind("client:bob", "b1", presence.TransportUDP)
	r2 := newScriptRinger(map[string]behaviour{"b1": {after: 60 * time.Millisecond, late: true}})
	e2.f.SetRinger(presence.TransportUDP, r2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	res, _, err = e2.dial(ctx, time.Second, &twiml.Client{Identity: "bob"})
	if err != nil || res.Status != DialCanceled || res.Leg != nil {
		t.Fatalf("dial: %+v, %v", res, err)
	}
	waitUntil(t, "the answer after the caller left hung up", func() bool {
		l := r2.leg("b1")
		if l == nil {
			return false
		}
		select {
		case <-l.hungUp:
			return true
		default:
			return false
		}
	})
}

// Targets: <Client> reaches client:x and what ClientTargets adds, <Sip> the
// identity its URI names, each binding once; a binding whose transport has
// no ringer is unavailable; numbers go to the Carrier only when there is one.
func TestForkTargets(t *testing.T) {
	e := newForkEnv(t)
	e.bind("client:alice", "a1", presence.TransportWebRTC)    // no ringer for webrtc
	e.bind("sip:alice@pbx.test", "s1", presence.TransportUDP) // alice on the domain
	e.bind("sip:carol@pbx.test", "c1", presence.TransportUDP)
	r := newScriptRinger(map[string]behaviour{"s1": {refuse: 486}, "c1": {refuse: 603}, "trunk": {after: 5 * time.Millisecond}})
	r.trunk = presence.Binding{Key: "trunk", Transport: presence.TransportUDP}
	e.f.SetRinger(presence.TransportUDP, r)

	res, _, err := e.dial(context.Background(), time.Second, &twiml.Client{Identity: "alice"}, &twiml.Sip{URI: "sip:alice@pbx.test"})
	if err != nil || res.Status != DialFailed { // 486 from s1, 480 for the browser binding nothing rings
		t.Fatalf("dial: %+v, %v", res, err)
	}
	if n := len(r.requests()); n != 1 {
		t.Fatalf("s1 rung %d times, want once", n)
	}
	res, _, err = e.dial(context.Background(), time.Second, &twiml.Sip{URI: "sip:carol@PBX.test"})
	if err != nil || res.Status != DialBusy {
		t.Fatalf("sip target: %+v, %v", res, err)
	}
	if _, _, err := e.dial(context.Background(), time.Second, &twiml.Sip{URI: "sip:nobody"}); err == nil {
		t.Fatal("an unreadable <Sip> URI dialled")
	}

	// Numbers: skipped without a carrier, rung through it with one, and the
	// carrier's answer marks nobody busy.
	res, _, err = e.dial(context.Background(), time.Second, &twiml.Number{Number: "+15550100"})
	if err != nil || res.Status != DialFailed {
		t.Fatalf("number without a carrier: %+v, %v", res, err)
	}
	e.f.SetCarrier(r)
	res, _, err = e.dial(context.Background(), time.Second, &twiml.Number{Number: "+15550100"})
	if err != nil || res.Status != DialAnswered {
		t.Fatalf("number through the carrier: %+v, %v", res, err)
	}
	reqs := r.requests()
	if last := reqs[len(reqs)-1]; last.Binding.Identity != "+15550100" || last.Binding.AccountSid != forkAccount {
		t.Fatalf("carrier rung with %+v", last.Binding)
	}
	if m := e.markedBusy(); len(m) != 0 {
		t.Fatalf("marked busy: %v", m)
	}

	// The caller's codecs are offered as they are.
	r2 := newScriptRinger(map[string]behaviour{"c1": {refuse: 486}})
	e.f.SetRinger(presence.TransportUDP, r2)
	offer := []media.RTPCodec{{PT: 8, Name: "PCMA", Rate: 8000, Channels: 1}}
	if _, err := e.f.Dial(context.Background(), DialRequest{Call: &Call{AccountSid: forkAccount}, Timeout: time.Second, Offer: offer,
		Targets: []twiml.DialTarget{&twiml.Sip{URI: "sip:carol@pbx.test"}}}); err != nil {
		t.Fatal(err)
	}
	if q := r2.requests(); len(q) != 1 || len(q[0].Offer) != 1 || !q[0].Offer[0].Is("PCMA") {
		t.Fatalf("offer: %+v", q)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
