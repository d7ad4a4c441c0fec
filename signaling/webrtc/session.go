package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
)

const (
	pingInterval = 25 * time.Second
	readTimeout  = 60 * time.Second // no frame nor pong for this long: the socket is dead
	writeTimeout = 10 * time.Second
	hardMaxFrame = 1 << 20 // larger messages close the socket (1009)
)

// session is one WebSocket: unauthenticated until register succeeds, then a
// presence binding (with the incoming grant) whose FlowID is flow.
type session struct {
	g      *Gateway
	conn   *websocket.Conn
	flow   string
	remote string
	ua     string

	wmu sync.Mutex // serialises writes

	mu        sync.Mutex
	claims    *accesstoken.Claims
	bound     bool
	cseq      uint32
	warnTimer *time.Timer
	expTimer  *time.Timer
	legs      map[string]*leg // by call sid
	refs      map[string]*leg // outgoing calls by the client's ref
	// registering is closed when a register in progress has answered; nil
	// when none is. Presence announces the binding before that answer, and
	// a message delivered meanwhile must follow the registered frame.
	registering chan struct{}

	done      chan struct{}
	closeOnce sync.Once
}

func newSession(g *Gateway, conn *websocket.Conn, r *http.Request) *session {
	return &session{g: g, conn: conn, flow: newFlowID(), remote: remoteIP(r), ua: r.UserAgent(),
		legs: map[string]*leg{}, refs: map[string]*leg{}, done: make(chan struct{})}
}

// registerAnswered waits (at most a few seconds) until a register in
// progress has answered.
func (s *session) registerAnswered() {
	s.mu.Lock()
	w := s.registering
	s.mu.Unlock()
	if w == nil {
		return
	}
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	select {
	case <-w:
	case <-s.done:
	case <-t.C:
	}
}

func (s *session) registered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims != nil
}

// send writes one frame; errors close the session.
func (s *session) send(f Frame) {
	b, err := json.Marshal(f)
	if err != nil {
		s.g.log.Error("marshal frame", "type", f.Type, "err", err)
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := s.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		s.g.log.Debug("browser socket write failed", "flow", s.flow, "err", err)
		go s.close(websocket.CloseAbnormalClosure, "write failed")
	}
}

func (s *session) sendError(code, msg string, about Frame) {
	s.send(Frame{Type: TypeError, Code: code, Message: msg, Ref: about.Ref, CallSid: about.CallSid})
}

// close sends a close frame and closes the socket; run's read loop then ends.
func (s *session) close(code int, reason string) {
	s.closeOnce.Do(func() {
		s.g.log.Debug("closing browser socket", "code", code, "reason", reason)
		close(s.done)
		s.wmu.Lock()
		s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		s.wmu.Unlock()
		s.conn.Close()
	})
}

// Close codes beyond RFC 6455's, in the private range.
const (
	closeAuthTimeout  = 4001
	closeTokenExpired = 4002
)

func (s *session) run() {
	defer s.cleanup()
	s.conn.SetReadLimit(max(hardMaxFrame, s.g.cfg.MaxFrameBytes+1))
	authTimer := time.AfterFunc(s.g.cfg.AuthTimeout, func() {
		if !s.registered() {
			s.send(Frame{Type: TypeError, Code: CodeAuthTimeout, Message: "no register within " + s.g.cfg.AuthTimeout.String()})
			s.close(closeAuthTimeout, "authentication timeout")
		}
	})
	defer authTimer.Stop()
	s.conn.SetReadDeadline(time.Now().Add(readTimeout))
	s.conn.SetPongHandler(func(string) error { return s.conn.SetReadDeadline(time.Now().Add(readTimeout)) })
	go s.pinger()
	for {
		mt, r, err := s.conn.NextReader()
		if err != nil {
			s.g.log.Debug("browser socket closed", "flow", s.flow, "err", err)
			return
		}
		s.conn.SetReadDeadline(time.Now().Add(readTimeout))
		data, err := io.ReadAll(io.LimitReader(r, s.g.cfg.MaxFrameBytes+1))
		if err != nil {
			return
		}
		if int64(len(data)) > s.g.cfg.MaxFrameBytes {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			s.send(Frame{Type: TypeError, Code: CodeTooLarge, Message: fmt.Sprintf("frame larger than %d bytes", s.g.cfg.MaxFrameBytes)})
			continue
		}
		if mt != websocket.TextMessage {
			s.send(Frame{Type: TypeError, Code: CodeBadFrame, Message: "binary frames are not part of the protocol"})
			continue
		}
		f, err := ParseFrame(data)
		if err != nil {
			s.send(Frame{Type: TypeError, Code: CodeBadFrame, Message: err.Error()})
			continue
		}
		s.handle(f)
	}
}

func (s *session) pinger() {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.wmu.Lock()
			err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
			s.wmu.Unlock()
			if err != nil {
				s.close(websocket.CloseAbnormalClosure, "ping failed")
				return
			}
		}
	}
}

// cleanup runs when the socket is gone: the binding goes offline and every
// call of the session is hung up.
func (s *session) cleanup() {
	s.close(websocket.CloseNormalClosure, "")
	s.mu.Lock()
	bound := s.bound
	s.bound, s.claims = false, nil
	stopTimers(s.warnTimer, s.expTimer)
	legs := make([]*leg, 0, len(s.legs))
	for _, l := range s.legs {
		legs = append(legs, l)
	}
	s.mu.Unlock()
	if bound {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.g.deps.Registry.DropFlow(ctx, s.flow); err != nil {
			s.g.log.Warn("presence: drop browser binding", "flow", s.flow, "err", err)
		}
		cancel()
	}
	for _, l := range legs {
		l.remoteHangup()
	}
}

func stopTimers(ts ...*time.Timer) {
	for _, t := range ts {
		if t != nil {
			t.Stop()
		}
	}
}

func (s *session) handle(f Frame) {
	switch f.Type {
	case TypePing:
		s.send(Frame{Type: TypePong})
		return
	case TypeRegister, TypeRefresh:
		s.register(f)
		return
	}
	s.mu.Lock()
	claims := s.claims
	s.mu.Unlock()
	if claims == nil {
		s.sendError(CodeNotRegistered, "register first", f)
		return
	}
	switch f.Type {
	case TypeInvite:
		go s.placeCall(*claims, f)
	case TypeAnswer, TypeRinging, TypeReject, TypeHangup, TypeCandidate, TypeDTMF:
		l := s.leg(f)
		if l == nil {
			if f.Type != TypeHangup { // a hangup crossing ours is normal
				s.sendError(CodeNoSuchCall, "no call "+f.CallSid+f.Ref, f)
			}
			return
		}
		l.frame(f)
	case TypeMessage:
		if s.g.deps.Messages == nil {
			s.sendError(CodeUnsupported, "messaging is not enabled", f)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.g.deps.Messages(ctx, claims.AccountSid, presence.ClientIdentity(claims.Grants.Identity), f.To, f.Body); err != nil {
			s.sendError(CodeMessageRefused, err.Error(), f)
		}
	}
}

func (s *session) leg(f Frame) *leg {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.CallSid != "" {
		if l := s.legs[f.CallSid]; l != nil {
			return l
		}
	}
	if f.Ref != "" {
		return s.refs[f.Ref]
	}
	return nil
}

func (s *session) addLeg(l *leg) {
	s.mu.Lock()
	s.legs[l.callSid] = l
	if l.ref != "" {
		s.refs[l.ref] = l
	}
	s.mu.Unlock()
}

func (s *session) dropLeg(l *leg) {
	s.mu.Lock()
	delete(s.legs, l.callSid)
	if l.ref != "" {
		delete(s.refs, l.ref)
	}
	s.mu.Unlock()
}

// register verifies a token and, with the incoming grant, makes the session
// a presence binding that lasts until the token expires. A refresh (or a
// second register) must keep the account and identity.
func (s *session) register(f Frame) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	claims, err := s.g.deps.Tokens.Verify(ctx, f.Token)
	if err != nil {
		reason := accesstoken.Reason(err)
		if reason == "" {
			reason = "invalid"
		}
		s.sendError(CodeUnauthorized, "token "+reason, f)
		return
	}
	if claims.Grants.Identity == "" {
		s.sendError(CodeForbidden, "the token has no identity", f)
		return
	}
	incoming, outgoing := claims.Grants.IncomingAllowed(), claims.Grants.OutgoingApplication() != ""
	if !incoming && !outgoing {
		s.sendError(CodeForbidden, "the token has no voice grant", f)
		return
	}
	s.mu.Lock()
	old := s.claims
	if old != nil && (old.AccountSid != claims.AccountSid || old.Grants.Identity != claims.Grants.Identity) {
		s.mu.Unlock()
		s.sendError(CodeForbidden, "a refreshed token must keep the account and identity", f)
		return
	}
	s.cseq++
	cseq, wasBound := s.cseq, s.bound
	answered := make(chan struct{})
	s.registering = answered
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.registering == answered {
			s.registering = nil
		}
		s.mu.Unlock()
		close(answered)
	}()
	now := s.g.deps.Now()
	identity := presence.ClientIdentity(claims.Grants.Identity)
	if incoming {
		_, err := s.g.deps.Registry.Apply(ctx, presence.Update{AccountSid: claims.AccountSid, Identity: identity, CallID: s.flow, CSeq: cseq, Now: now,
			Contacts: []presence.Binding{{Key: s.flow, Contact: "sip:" + s.flow + "@webrtc.invalid", Expires: claims.Expires,
				Transport: presence.TransportWebRTC, Source: s.remote, FlowID: s.flow, UserAgent: s.ua}}})
		if err != nil {
			code := CodeUnavailable
			if errors.Is(err, presence.ErrTooManyBindings) {
				code = CodeForbidden
			}
			s.sendError(code, "presence: "+err.Error(), f)
			return
		}
	} else if wasBound {
		if err := s.g.deps.Registry.DropFlow(ctx, s.flow); err != nil {
			s.g.log.Warn("presence: drop browser binding", "flow", s.flow, "err", err)
		}
	}
	s.mu.Lock()
	select {
	case <-s.done: // the socket closed meanwhile: cleanup may have run already
		s.mu.Unlock()
		if incoming {
			_ = s.g.deps.Registry.DropFlow(ctx, s.flow)
		}
		return
	default:
	}
	s.claims, s.bound = &claims, incoming
	stopTimers(s.warnTimer, s.expTimer)
	left := claims.Expires.Sub(now)
	if w := left - s.g.cfg.ExpiryWarning; w > 0 {
		s.warnTimer = time.AfterFunc(w, func() {
			s.send(Frame{Type: TypeTokenWillExpire, Expires: claims.Expires.Unix()})
		})
	} else {
		s.warnTimer = nil
	}
	s.expTimer = time.AfterFunc(left, s.expired)
	s.mu.Unlock()
	inc := incoming
	s.send(Frame{Type: TypeRegistered, V: ProtocolVersion, Identity: claims.Grants.Identity, Session: s.flow,
		Expires: claims.Expires.Unix(), Incoming: &inc, ICEServers: s.g.cfg.ICEServers})
	if left <= s.g.cfg.ExpiryWarning {
		s.send(Frame{Type: TypeTokenWillExpire, Expires: claims.Expires.Unix()})
	}
}

// expired ends a session whose token was not refreshed in time.
func (s *session) expired() {
	s.send(Frame{Type: TypeError, Code: CodeTokenExpired, Message: "the access token expired"})
	s.close(closeTokenExpired, "token expired")
}
