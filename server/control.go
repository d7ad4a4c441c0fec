package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/admission"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	"github.com/parleyhq/parley/plugins/sdk"
)

// The control socket lets operator commands reach a running server's
// policy plugins (admission limits live in the admission plugin, which one
// process owns; partners in whichever partners plugin the server runs). It is a Unix socket in the data directory, mode 0600: who
// can open it could also read the database.

// ControlSocket is the control socket's path for a data directory.
func ControlSocket(dataDir string) string { return filepath.Join(dataDir, "parley.sock") }

func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/limits", func(w http.ResponseWriter, r *http.Request) {
		ls, err := s.admission.Limits(r.Context(), r.URL.Query().Get("account"))
		controlReply(w, ls, err)
	})
	mux.HandleFunc("POST /v1/credentials/forget", func(w http.ResponseWriter, r *http.Request) {
		s.sip.ForgetCredentials()
		controlReply(w, map[string]bool{"forgotten": true}, nil)
	})
	mux.HandleFunc("POST /v1/limits", func(w http.ResponseWriter, r *http.Request) {
		acct, res := r.FormValue("account"), admission.Resource(r.FormValue("resource"))
		var l admission.Limit
		var err error
		if r.FormValue("default") == "true" {
			l, err = s.admission.ClearLimit(r.Context(), acct, res)
		} else {
			n, perr := strconv.ParseInt(r.FormValue("limit"), 10, 64)
			if perr != nil {
				controlReply(w, nil, fmt.Errorf("limit %q: %w", r.FormValue("limit"), perr))
				return
			}
			l, err = s.admission.SetLimit(r.Context(), acct, res, n)
		}
		controlReply(w, l, err)
	})
	mux.HandleFunc("POST /v1/partners/{rpc}", s.controlPartners)
	return mux
}

// controlPartners relays one partner-management call of `parley partner`
// to the running partners plugin: the request and the answer are the
// plugin's protobuf messages as JSON; a refusal is the plugin's message.
func (s *Server) controlPartners(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Plugins.Use[string(sdk.KindPartners)] == "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(map[string]string{"error": ErrPartnersDisabled.Error()})
		return
	}
	cl, err := s.plugins.Partners(r.Context())
	if err != nil {
		controlReply(w, nil, err)
		return
	}
	rpcs := map[string]func(context.Context, []byte) (proto.Message, error){
		"CreatePartner": relay(&partnersv1.CreatePartnerRequest{}, cl.CreatePartner),
		"ListPartners":  relay(&partnersv1.ListPartnersRequest{}, cl.ListPartners),
		"GetPartner":    relay(&partnersv1.GetPartnerRequest{}, cl.GetPartner),
		"UpdatePartner": relay(&partnersv1.UpdatePartnerRequest{}, cl.UpdatePartner),
		"AddKey":        relay(&partnersv1.AddKeyRequest{}, cl.AddKey),
		"RevokeKey":     relay(&partnersv1.RevokeKeyRequest{}, cl.RevokeKey),
	}
	call, ok := rpcs[r.PathValue("rpc")]
	if !ok {
		controlReply(w, nil, fmt.Errorf("no partners call %q", r.PathValue("rpc")))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		controlReply(w, nil, err)
		return
	}
	res, err := call(r.Context(), body)
	if err != nil {
		controlReply(w, nil, errors.New(status.Convert(err).Message()))
		return
	}
	out, err := protojson.Marshal(res)
	if err != nil {
		controlReply(w, nil, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// relay decodes a request into req and makes the plugin call.
func relay[Req, Res proto.Message](req Req, call func(context.Context, Req, ...grpc.CallOption) (Res, error)) func(context.Context, []byte) (proto.Message, error) {
	return func(ctx context.Context, body []byte) (proto.Message, error) {
		if err := protojson.Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("request: %w", err)
		}
		res, err := call(ctx, req)
		if err != nil {
			return nil, err
		}
		return res, nil
	}
}

func controlReply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// serveControl listens on the control socket until ctx ends.
func (s *Server) serveControl(ctx context.Context) (func(), error) {
	path := ControlSocket(s.cfg.DataDir)
	_ = os.Remove(path) // we hold the data-dir lock: any socket file left is stale
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	hs := &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	return func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(cctx)
		_ = os.Remove(path)
	}, nil
}

// ControlClient talks to a running server's control socket.
type ControlClient struct {
	hc *http.Client
}

// NewControlClient connects to the server using dataDir.
func NewControlClient(dataDir string) *ControlClient {
	path := ControlSocket(dataDir)
	return &ControlClient{hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}}
}

func (c *ControlClient) do(ctx context.Context, method, path string, form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = bytes.NewBufferString(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://parley"+path, body)
	if err != nil {
		return err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(res.Body).Decode(&e)
		return errors.New(e.Error)
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// Limits returns an account's limits from the running server.
func (c *ControlClient) Limits(ctx context.Context, accountSid string) ([]admission.Limit, error) {
	var ls []admission.Limit
	err := c.do(ctx, http.MethodGet, "/v1/limits?account="+url.QueryEscape(accountSid), nil, &ls)
	return ls, err
}

// SetLimit sets an account's limit on the running server.
func (c *ControlClient) SetLimit(ctx context.Context, accountSid string, r admission.Resource, limit int64) (admission.Limit, error) {
	var l admission.Limit
	err := c.do(ctx, http.MethodPost, "/v1/limits", url.Values{"account": {accountSid}, "resource": {string(r)}, "limit": {strconv.FormatInt(limit, 10)}}, &l)
	return l, err
}

// ClearLimit returns an account's limit to the default on the running server.
func (c *ControlClient) ClearLimit(ctx context.Context, accountSid string, r admission.Resource) (admission.Limit, error) {
	var l admission.Limit
	err := c.do(ctx, http.MethodPost, "/v1/limits", url.Values{"account": {accountSid}, "resource": {string(r)}, "default": {"true"}}, &l)
	return l, err
}

// ErrPartnersDisabled means the running server runs no partners plugin
// (plugins.use.partners is empty).
var ErrPartnersDisabled = errors.New("the running parley server has partner delegation disabled (plugins.use.partners)")

// partners makes one partners-plugin call through the running server.
func (c *ControlClient) partners(ctx context.Context, rpc string, req, res proto.Message) error {
	body, err := protojson.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://parley/v1/partners/"+rpc, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hres, err := c.hc.Do(hreq)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer hres.Body.Close()
	out, err := io.ReadAll(io.LimitReader(hres.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	switch hres.StatusCode {
	case http.StatusOK:
		return protojson.Unmarshal(out, res)
	case http.StatusConflict:
		return ErrPartnersDisabled
	}
	var e struct{ Error string }
	_ = json.Unmarshal(out, &e)
	return errors.New(e.Error)
}

// CreatePartner creates a partner through the running server's plugin.
func (c *ControlClient) CreatePartner(ctx context.Context, req *partnersv1.CreatePartnerRequest) (*partnersv1.CreatePartnerResponse, error) {
	res := &partnersv1.CreatePartnerResponse{}
	return res, c.partners(ctx, "CreatePartner", req, res)
}

// ListPartners lists the partners through the running server's plugin.
func (c *ControlClient) ListPartners(ctx context.Context, req *partnersv1.ListPartnersRequest) (*partnersv1.ListPartnersResponse, error) {
	res := &partnersv1.ListPartnersResponse{}
	return res, c.partners(ctx, "ListPartners", req, res)
}

// GetPartner returns a partner through the running server's plugin.
func (c *ControlClient) GetPartner(ctx context.Context, req *partnersv1.GetPartnerRequest) (*partnersv1.Partner, error) {
	res := &partnersv1.Partner{}
	return res, c.partners(ctx, "GetPartner", req, res)
}

// UpdatePartner changes a partner through the running server's plugin.
func (c *ControlClient) UpdatePartner(ctx context.Context, req *partnersv1.UpdatePartnerRequest) (*partnersv1.Partner, error) {
	res := &partnersv1.Partner{}
	return res, c.partners(ctx, "UpdatePartner", req, res)
}

// AddKey adds a partner key through the running server's plugin.
func (c *ControlClient) AddKey(ctx context.Context, req *partnersv1.AddKeyRequest) (*partnersv1.PartnerKey, error) {
	res := &partnersv1.PartnerKey{}
	return res, c.partners(ctx, "AddKey", req, res)
}

// RevokeKey revokes a partner key through the running server's plugin.
func (c *ControlClient) RevokeKey(ctx context.Context, req *partnersv1.RevokeKeyRequest) (*partnersv1.PartnerKey, error) {
	res := &partnersv1.PartnerKey{}
	return res, c.partners(ctx, "RevokeKey", req, res)
}

// ErrNoServer means no server answers on the control socket.
var ErrNoServer = errors.New("no parley server is running on this data directory")

// ForgetCredentials makes a running server drop its cached SIP credential
// lookups. With no server running it returns ErrNoServer.
func (c *ControlClient) ForgetCredentials(ctx context.Context) error {
	var out map[string]bool
	err := c.do(ctx, http.MethodPost, "/v1/credentials/forget", url.Values{}, &out)
	var op *net.OpError
	if errors.As(err, &op) {
		return ErrNoServer
	}
	return err
}

// LockDataDir takes the data directory's lock for a command that must not
// run beside a server (it returns an error wrapping ErrDataDirLocked when a
// server holds it). The returned function releases it.
func LockDataDir(dir string) (func() error, error) {
	if err := PrepareDataDir(dir); err != nil {
		return nil, err
	}
	l, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	return l.release, nil
}
