package partners

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/usage"
	"github.com/parleyhq/parley/web"
)

// CookieName is the portal session cookie.
const CookieName = "parley_portal"

// PortalSessions redeems portal tokens and reads sessions (*Client does).
type PortalSessions interface {
	Redeem(ctx context.Context, token string, ttl time.Duration) (Session, string, error)
	Session(ctx context.Context, id string) (Session, error)
}

// Call is an account's call as the portal needs it.
type Call struct {
	Sid, From, To, Direction, Status string
	Started                          time.Time // zero until answered
	DateCreated                      time.Time
	Duration                         time.Duration
}

// CallLister lists an account's latest calls, newest first (the core store
// does, through an adapter in the composition root).
type CallLister interface {
	RecentCalls(ctx context.Context, accountSid string, n int) ([]Call, error)
}

// PresenceSource lists an account's presence and publishes changes
// (*presence.Memory does).
type PresenceSource interface {
	List(ctx context.Context, accountSid string) ([]presence.Presence, error)
	Events() *presence.Bus
}

// PortalUsage reads usage and manages triggers (*usage.Client does).
type PortalUsage interface {
	Records(ctx context.Context, q usage.RecordsQuery) ([]usage.Record, error)
	ListTriggers(ctx context.Context, accountSid string, f usage.TriggerFilter) ([]usage.Trigger, error)
	CreateTrigger(ctx context.Context, t usage.Trigger) (usage.Trigger, error)
	DeleteTrigger(ctx context.Context, accountSid, sid string) error
}

// PortalOptions configures the portal.
type PortalOptions struct {
	Sessions PortalSessions
	Accounts Accounts
	Calls    CallLister
	Presence PresenceSource // nil: the presence feature is unavailable
	Usage    PortalUsage    // nil: the usage and triggers features are unavailable
	// SessionTTL is how long a redeemed session lasts (0: one hour).
	SessionTTL time.Duration
	Log        *slog.Logger
	Now        func() time.Time
}

// Portal serves the account portal under /portal/ and the partner embed
// snippet at /embed/parley-embed.js. Every portal response carries
// Content-Security-Policy frame-ancestors with the session's partner
// origins ('none' without a session).
type Portal struct {
	o     PortalOptions
	mux   *http.ServeMux
	index *template.Template
	files http.Handler
	up    websocket.Upgrader
}

// NewPortal builds the portal handler.
func NewPortal(o PortalOptions) *Portal {
	if o.SessionTTL <= 0 {
		o.SessionTTL = time.Hour
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Portal{o: o, mux: http.NewServeMux(), files: http.FileServerFS(web.Portal())}
	p.index = template.Must(template.ParseFS(web.Portal(), "index.html"))
	p.up = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 4096, CheckOrigin: sameOrigin}
	p.mux.HandleFunc("GET /portal", func(w http.ResponseWriter, r *http.Request) {
		p.withCSP(w, nil)
		http.Redirect(w, r, "/portal/", http.StatusMovedPermanently)
	})
	p.mux.HandleFunc("GET /portal/{$}", p.serveIndex)
	p.mux.HandleFunc("GET /portal/{file}", p.serveFile)
	p.api("GET /portal/api/session", "", p.apiSession)
	p.api("GET /portal/api/presence", partnersv1.FeaturePresence, p.apiPresence)
	p.mux.HandleFunc("GET /portal/api/presence/ws", p.presenceSocket)
	p.api("GET /portal/api/calls", partnersv1.FeatureCalls, p.apiCalls)
	p.api("GET /portal/api/usage", partnersv1.FeatureUsage, p.apiUsage)
	p.api("GET /portal/api/triggers", partnersv1.FeatureTriggers, p.apiTriggers)
	p.api("POST /portal/api/triggers", partnersv1.FeatureTriggers, p.apiCreateTrigger)
	p.api("DELETE /portal/api/triggers/{sid}", partnersv1.FeatureTriggers, p.apiDeleteTrigger)
	p.mux.HandleFunc("/portal/", func(w http.ResponseWriter, r *http.Request) {
		p.withCSP(w, nil)
		writeAPIError(w, http.StatusNotFound, "not_found", "no such portal resource")
	})
	return p
}

// EmbedHandler serves web/embed (parley-embed.js) for partner pages on any origin.
func EmbedHandler() http.Handler {
	files := http.FileServerFS(web.Embed())
	return http.StripPrefix("/embed", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
}

func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// CSP is the Content-Security-Policy of a portal response framed by origins.
func CSP(origins []string) string {
	fa := "'none'"
	if len(origins) > 0 {
		fa = strings.Join(origins, " ")
	}
	return "frame-ancestors " + fa + "; default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'"
}

func (p *Portal) withCSP(w http.ResponseWriter, s *Session) {
	var origins []string
	if s != nil {
		origins = s.AllowedOrigins
	}
	h := w.Header()
	h.Set("Content-Security-Policy", CSP(origins))
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// session reads the cookie's session; nil when there is none or it ended.
func (p *Portal) session(r *http.Request) (*Session, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	s, err := p.o.Sessions.Session(r.Context(), c.Value)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func setSessionCookie(w http.ResponseWriter, s Session, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: s.ID, Path: "/portal", MaxAge: int(ttl.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode, Partitioned: true})
}

type indexData struct {
	State   string // ok | expired | invalid
	Origins string
}

// serveIndex redeems ?token= into the session cookie, then serves the page
// (whose script removes the token from the URL and history).
func (p *Portal) serveIndex(w http.ResponseWriter, r *http.Request) {
	data := indexData{State: "ok"}
	var sess *Session
	if tok := r.URL.Query().Get("token"); tok != "" {
		s, reason, err := p.o.Sessions.Redeem(r.Context(), tok, p.o.SessionTTL)
		switch {
		case err != nil:
			p.o.Log.Warn("portal token redemption failed", "err", err)
			p.withCSP(w, nil)
			http.Error(w, "portal unavailable, try again shortly", http.StatusServiceUnavailable)
			return
		case reason != "":
			data.State = "expired"
			if s.PartnerSid == "" {
				data.State = "invalid"
			} else {
				sess = &s // framed by the partner so the embed learns to fetch a fresh URL
			}
		default:
			setSessionCookie(w, s, p.o.SessionTTL)
			sess = &s
		}
	} else {
		s, err := p.session(r)
		if err != nil {
			p.withCSP(w, nil)
			http.Error(w, "portal unavailable, try again shortly", http.StatusServiceUnavailable)
			return
		}
		if sess = s; s == nil {
			data.State = "expired"
		}
	}
	if sess != nil {
		data.Origins = strings.Join(sess.AllowedOrigins, " ")
	}
	p.withCSP(w, sess)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	status := http.StatusOK
	if data.State != "ok" {
		status = http.StatusUnauthorized
	}
	w.WriteHeader(status)
	if err := p.index.Execute(w, data); err != nil {
		p.o.Log.Warn("portal index", "err", err)
	}
}

func (p *Portal) serveFile(w http.ResponseWriter, r *http.Request) {
	s, _ := p.session(r)
	p.withCSP(w, s)
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + r.PathValue("file")
	p.files.ServeHTTP(w, r2)
}

type apiFunc func(r *http.Request, s Session) (int, any, error)

// api registers a session-authenticated JSON endpoint; feature, when set,
// must be enabled for the session.
func (p *Portal) api(pattern, feature string, h apiFunc) {
	p.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s, err := p.session(r)
		p.withCSP(w, s)
		switch {
		case err != nil:
			p.o.Log.Warn("portal session lookup", "err", err)
			writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "portal unavailable, try again shortly")
			return
		case s == nil:
			writeAPIError(w, http.StatusUnauthorized, "session_expired", "the portal session ended; reload the portal")
			return
		case feature != "" && !slices.Contains(s.Features, feature):
			writeAPIError(w, http.StatusForbidden, "feature_disabled", "the "+feature+" feature is not enabled for this portal")
			return
		}
		if r.Method != http.MethodGet {
			// A cross-site page cannot set this header without a CORS
			// preflight, which the portal never grants.
			if r.Header.Get("X-Parley-Portal") != "1" || (r.Header.Get("Sec-Fetch-Site") != "" && r.Header.Get("Sec-Fetch-Site") != "same-origin") {
				writeAPIError(w, http.StatusForbidden, "csrf", "changes must come from the portal itself")
				return
			}
		}
		acct, err := p.o.Accounts.Account(r.Context(), s.AccountSid)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && acct.Status == AccountClosed):
			writeAPIError(w, http.StatusUnauthorized, "session_expired", "the account is closed")
			return
		case err != nil:
			p.o.Log.Warn("portal account lookup", "err", err)
			writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "portal unavailable, try again shortly")
			return
		}
		status, body, err := h(r, *s)
		if err != nil {
			var inv *usage.InvalidError
			var perr *portalError
			switch {
			case errors.As(err, &perr):
				writeAPIError(w, perr.status, perr.code, perr.msg)
			case errors.As(err, &inv):
				writeAPIError(w, http.StatusBadRequest, "invalid", inv.Msg)
			case errors.Is(err, usage.ErrNotFound):
				writeAPIError(w, http.StatusNotFound, "not_found", "no such trigger")
			default:
				p.o.Log.Warn("portal request failed", "path", r.URL.Path, "err", err)
				writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "this part of the portal is unavailable, try again shortly")
			}
			return
		}
		writePortalJSON(w, status, body)
	})
}

type portalError struct {
	status    int
	code, msg string
}

func (e *portalError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &portalError{status: http.StatusBadRequest, code: "invalid", msg: fmt.Sprintf(format, args...)}
}

func writePortalJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	writePortalJSON(w, status, map[string]string{"error": code, "message": msg})
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (p *Portal) apiSession(r *http.Request, s Session) (int, any, error) {
	acct, err := p.o.Accounts.Account(r.Context(), s.AccountSid)
	if err != nil {
		return 0, nil, err
	}
	features := slices.DeleteFunc(slices.Clone(s.Features), func(f string) bool {
		return (f == partnersv1.FeaturePresence && p.o.Presence == nil) ||
			((f == partnersv1.FeatureUsage || f == partnersv1.FeatureTriggers) && p.o.Usage == nil)
	})
	return http.StatusOK, map[string]any{
		"account":         map[string]string{"sid": acct.Sid, "friendly_name": acct.FriendlyName, "status": acct.Status},
		"partner":         map[string]string{"sid": s.PartnerSid, "friendly_name": s.PartnerName},
		"features":        features,
		"allowed_origins": s.AllowedOrigins,
		"expires_at":      rfc3339(s.ExpiresAt),
		"categories":      usagev1.Categories(),
	}, nil
}

// PresenceItem is one identity's presence as the portal shows it.
type PresenceItem struct {
	Identity   string   `json:"identity"`
	Status     string   `json:"status"`
	Bindings   int      `json:"bindings"`
	Transports []string `json:"transports"`
}

func (p *Portal) presenceList(ctx context.Context, accountSid string) ([]PresenceItem, error) {
	if p.o.Presence == nil {
		return nil, &portalError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "presence is not available on this server"}
	}
	ps, err := p.o.Presence.List(ctx, accountSid)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	out := make([]PresenceItem, 0, len(ps))
	for _, pr := range ps {
		it := PresenceItem{Identity: pr.Identity, Status: string(pr.Status), Bindings: len(pr.Bindings), Transports: []string{}}
		for _, b := range pr.Bindings {
			if !slices.Contains(it.Transports, b.Transport) {
				it.Transports = append(it.Transports, b.Transport)
			}
		}
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b PresenceItem) int { return strings.Compare(a.Identity, b.Identity) })
	return out, nil
}

func (p *Portal) apiPresence(r *http.Request, s Session) (int, any, error) {
	items, err := p.presenceList(r.Context(), s.AccountSid)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"presence": items}, nil
}

// sameOrigin accepts a WebSocket only from the portal's own pages.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// presenceSocket streams the session account's presence: a snapshot, then
// each change; it closes when the session ends.
func (p *Portal) presenceSocket(w http.ResponseWriter, r *http.Request) {
	s, err := p.session(r)
	p.withCSP(w, s)
	switch {
	case err != nil:
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "portal unavailable, try again shortly")
		return
	case s == nil:
		writeAPIError(w, http.StatusUnauthorized, "session_expired", "the portal session ended; reload the portal")
		return
	case !slices.Contains(s.Features, partnersv1.FeaturePresence) || p.o.Presence == nil:
		writeAPIError(w, http.StatusForbidden, "feature_disabled", "the presence feature is not enabled for this portal")
		return
	}
	acct := s.AccountSid // the only account this socket ever sees
	sub := p.o.Presence.Events().Subscribe(256, func(e presence.Event) bool { return e.AccountSid == acct })
	defer sub.Close()
	conn, err := p.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	defer conn.Close()
	ctx, cancel := context.WithDeadline(r.Context(), s.ExpiresAt)
	defer cancel()
	// The HTTP server's read/write timeouts stay on a hijacked connection:
	// replace them with a read deadline that each pong (every 30 s) extends.
	const idle = 75 * time.Second
	_ = conn.SetReadDeadline(time.Now().Add(idle))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(idle)) })
	go func() { // reads only to notice the close
		defer cancel()
		conn.SetReadLimit(512)
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	send := func(v any) error {
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return conn.WriteJSON(v)
	}
	items, err := p.presenceList(ctx, acct)
	if err != nil || send(map[string]any{"type": "snapshot", "presence": items}) != nil {
		return
	}
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				_ = send(map[string]string{"type": "expired"})
			}
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "session ended"), time.Now().Add(time.Second))
			return
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
				return
			}
		case e := <-sub.C:
			ev := map[string]any{"type": "presence", "identity": e.Identity, "status": string(e.Status), "previous": string(e.Previous),
				"bindings": e.Bindings, "at": e.At.UTC().Format(time.RFC3339Nano), "transports": p.transports(ctx, acct, e.Identity)}
			if err := send(ev); err != nil {
				return
			}
		}
	}
}

// transports returns the transports an identity's bindings use now.
func (p *Portal) transports(ctx context.Context, accountSid, identity string) []string {
	items, err := p.presenceList(ctx, accountSid)
	if err == nil {
		for _, it := range items {
			if it.Identity == identity {
				return it.Transports
			}
		}
	}
	return []string{}
}

// CallItem is a call as the portal shows it.
type CallItem struct {
	Sid       string `json:"sid"`
	From      string `json:"from"`
	To        string `json:"to"`
	Direction string `json:"direction"`
	Status    string `json:"status"`
	StartTime string `json:"start_time"`
	Duration  int64  `json:"duration"` // seconds
}

func (p *Portal) apiCalls(r *http.Request, s Session) (int, any, error) {
	calls, err := p.o.Calls.RecentCalls(r.Context(), s.AccountSid, 25)
	if err != nil {
		return 0, nil, fmt.Errorf("calls: %w", err)
	}
	out := make([]CallItem, 0, len(calls))
	for _, c := range calls {
		start := c.Started
		if start.IsZero() {
			start = c.DateCreated
		}
		out = append(out, CallItem{Sid: c.Sid, From: c.From, To: c.To, Direction: c.Direction, Status: c.Status,
			StartTime: rfc3339(start), Duration: int64(c.Duration.Round(time.Second) / time.Second)})
	}
	return http.StatusOK, map[string]any{"calls": out}, nil
}

func (p *Portal) usage() (PortalUsage, error) {
	if p.o.Usage == nil {
		return nil, &portalError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "usage is not enabled on this server"}
	}
	return p.o.Usage, nil
}

// UsageItem is one category's usage this month.
type UsageItem struct {
	Category  string  `json:"category"`
	Count     int64   `json:"count"`
	CountUnit string  `json:"count_unit"`
	Usage     float64 `json:"usage"`
	UsageUnit string  `json:"usage_unit"`
}

func (p *Portal) apiUsage(r *http.Request, s Session) (int, any, error) {
	u, err := p.usage()
	if err != nil {
		return 0, nil, err
	}
	now := p.o.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	recs, err := u.Records(r.Context(), usage.RecordsQuery{AccountSid: s.AccountSid, Start: month, End: month.AddDate(0, 1, 0)})
	if err != nil {
		return 0, nil, err
	}
	out := make([]UsageItem, 0, len(recs))
	for _, rec := range recs {
		out = append(out, UsageItem{Category: rec.Category, Count: rec.Count, CountUnit: rec.CountUnit, Usage: rec.Usage, UsageUnit: rec.UsageUnit})
	}
	return http.StatusOK, map[string]any{"month": month.Format("2006-01"), "usage": out}, nil
}

// TriggerItem is a usage trigger as the portal shows it.
type TriggerItem struct {
	Sid           string  `json:"sid"`
	FriendlyName  string  `json:"friendly_name"`
	UsageCategory string  `json:"usage_category"`
	TriggerValue  string  `json:"trigger_value"`
	CurrentValue  float64 `json:"current_value"`
	TriggerBy     string  `json:"trigger_by"`
	Recurring     string  `json:"recurring"`
	CallbackURL   string  `json:"callback_url"`
	Action        string  `json:"action"`
	DateFired     string  `json:"date_fired"`
}

func triggerItem(t usage.Trigger) TriggerItem {
	return TriggerItem{Sid: t.Sid, FriendlyName: t.FriendlyName, UsageCategory: t.UsageCategory, TriggerValue: t.TriggerValue, TriggerBy: t.TriggerBy,
		CurrentValue: t.CurrentValue, Recurring: t.Recurring, CallbackURL: t.CallbackURL, Action: t.Action, DateFired: rfc3339(t.DateFired)}
}

func (p *Portal) apiTriggers(r *http.Request, s Session) (int, any, error) {
	u, err := p.usage()
	if err != nil {
		return 0, nil, err
	}
	ts, err := u.ListTriggers(r.Context(), s.AccountSid, usage.TriggerFilter{})
	if err != nil {
		return 0, nil, err
	}
	out := make([]TriggerItem, 0, len(ts))
	for _, t := range ts {
		out = append(out, triggerItem(t))
	}
	return http.StatusOK, map[string]any{"triggers": out}, nil
}

// NewTrigger is the portal's trigger form.
type NewTrigger struct {
	FriendlyName  string `json:"friendly_name"`
	UsageCategory string `json:"usage_category"`
	TriggerValue  string `json:"trigger_value"`
	Recurring     string `json:"recurring"`
	TriggerBy     string `json:"trigger_by"` // count (default) or usage
	CallbackURL   string `json:"callback_url"`
	Suspend       bool   `json:"suspend"`
}

// Check validates a trigger form.
func (n NewTrigger) Check() error {
	switch {
	case len(n.FriendlyName) > 64:
		return badInput("the name is at most 64 characters")
	case !slices.Contains(usagev1.Categories(), n.UsageCategory):
		return badInput("pick a usage category")
	case !slices.Contains([]string{"", "daily", "monthly", "yearly"}, n.Recurring):
		return badInput("repeat must be never, daily, monthly or yearly")
	case !slices.Contains([]string{"", usagev1.ByCount, usagev1.ByUsage}, n.TriggerBy):
		return badInput("measure must be count or usage")
	case n.CallbackURL == "" && !n.Suspend:
		return badInput("give a callback URL or choose to suspend the account")
	}
	if v, err := strconv.ParseFloat(n.TriggerValue, 64); err != nil || v <= 0 {
		return badInput("the threshold must be a positive number")
	}
	if n.CallbackURL != "" {
		u, err := url.Parse(n.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return badInput("the callback URL must be an http(s) URL")
		}
	}
	return nil
}

func (p *Portal) apiCreateTrigger(r *http.Request, s Session) (int, any, error) {
	u, err := p.usage()
	if err != nil {
		return 0, nil, err
	}
	var n NewTrigger
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		return 0, nil, badInput("the request body must be a trigger as JSON: %v", err)
	}
	if err := n.Check(); err != nil {
		return 0, nil, err
	}
	t := usage.Trigger{AccountSid: s.AccountSid, FriendlyName: n.FriendlyName, UsageCategory: n.UsageCategory, TriggerValue: n.TriggerValue,
		TriggerBy: cmp.Or(n.TriggerBy, usagev1.ByCount), Recurring: n.Recurring, CallbackURL: n.CallbackURL, CallbackMethod: http.MethodPost}
	if n.Suspend {
		t.Action = usagev1.ActionSuspendAccount
	}
	created, err := u.CreateTrigger(r.Context(), t)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, triggerItem(created), nil
}

func (p *Portal) apiDeleteTrigger(r *http.Request, s Session) (int, any, error) {
	u, err := p.usage()
	if err != nil {
		return 0, nil, err
	}
	if err := u.DeleteTrigger(r.Context(), s.AccountSid, r.PathValue("sid")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
