package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Header names.
const (
	HeaderCompat = "X-Twilio-Signature"
	HeaderParley = "X-Parley-Signature"
)

func signingString(rawURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(rawURL)
	for _, k := range keys {
		for _, v := range params[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	return b.String()
}

func mac(h func() hash.Hash, key, msg string) string {
	m := hmac.New(h, []byte(key))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns the compatible (HMAC-SHA1) signature of a request to rawURL
// with form parameters params, keyed by authToken.
func Sign(authToken, rawURL string, params url.Values) string {
	return mac(sha1.New, authToken, signingString(rawURL, params))
}

// SignSHA256 returns the X-Parley-Signature of the same request.
func SignSHA256(authToken, rawURL string, params url.Values) string {
	return mac(sha256.New, authToken, signingString(rawURL, params))
}

// Request is one webhook to send.
type Request struct {
	URL       string
	Method    string // GET or POST (default POST)
	Params    url.Values
	AuthToken string // signing key; empty sends no signatures
}

// Response is what the receiver answered with a 2xx status.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Errors that classify a failed webhook, so callers can decide on fallback
// and report precisely.
var (
	ErrStatus   = errors.New("webhook answered with a non-2xx status")
	ErrTooLarge = errors.New("webhook reply too large")
	ErrTimeout  = errors.New("webhook timed out")
)

// Client sends webhooks with a timeout and a cap on the reply size, through
// its egress policy. Use it by pointer; do not copy it after first use.
type Client struct {
	// Policy decides which URLs may be fetched. Nil: a policy with default
	// options, which refuses every non-public address.
	Policy    *Policy
	Timeout   time.Duration // whole request, default 10s
	MaxBytes  int64         // reply cap, default 64 KiB
	UserAgent string

	once sync.Once
	pol  *Policy
	hc   *http.Client
}

func (c *Client) init() {
	c.once.Do(func() {
		c.pol = c.Policy
		if c.pol == nil {
			c.pol = NewPolicy(PolicyOptions{})
		}
		if c.Timeout <= 0 {
			c.Timeout = 10 * time.Second
		}
		c.hc = c.pol.HTTPClient(c.Timeout)
	})
}

// EgressPolicy is the policy the client fetches through, for other fetches
// of tenant URLs (e.g. <Play> audio) to share.
func (c *Client) EgressPolicy() *Policy {
	c.init()
	return c.pol
}

// Do sends r and returns the 2xx reply. Errors wrap ErrStatus, ErrTooLarge or
// ErrTimeout where those apply; a URL the egress policy refuses is a
// *RefusedError (see Code).
func (c *Client) Do(ctx context.Context, r Request) (Response, error) {
	c.init()
	timeout := c.Timeout
	limit := c.MaxBytes
	if limit <= 0 {
		limit = 64 << 10
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	method := strings.ToUpper(r.Method)
	if method == "" {
		method = http.MethodPost
	}
	u, err := c.pol.CheckURL(r.URL)
	if err != nil {
		return Response{}, fmt.Errorf("webhook %s %s: %w", method, redactRaw(r.URL), err)
	}
	var body io.Reader
	signed, signParams := r.URL, r.Params
	switch method {
	case http.MethodGet:
		q := u.Query()
		for k, vs := range r.Params {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
		signed, signParams = u.String(), nil
	case http.MethodPost:
		body = strings.NewReader(r.Params.Encode())
	default:
		return Response{}, fmt.Errorf("webhook method %q: want GET or POST", r.Method)
	}
	req, err := http.NewRequestWithContext(ctx, method, signed, body)
	if err != nil {
		return Response{}, fmt.Errorf("webhook request: %w", err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if r.AuthToken != "" {
		req.Header.Set(HeaderCompat, Sign(r.AuthToken, signed, signParams))
		req.Header.Set(HeaderParley, SignSHA256(r.AuthToken, signed, signParams))
	}
	res, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, query and all
		}
		if errors.Is(err, ErrRefused) {
			return Response{}, fmt.Errorf("webhook %s %s: %w", method, redact(u), err)
		}
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return Response{}, fmt.Errorf("%w after %s: %s %s", ErrTimeout, timeout, method, redact(u))
		}
		return Response{}, fmt.Errorf("webhook %s %s: %w", method, redact(u), err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return Response{}, fmt.Errorf("%w reading the reply after %s: %s %s", ErrTimeout, timeout, method, redact(u))
		}
		return Response{}, fmt.Errorf("webhook %s %s: reading reply: %w", method, redact(u), err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return Response{}, fmt.Errorf("%w: %s %s answered %d", ErrStatus, method, redact(u), res.StatusCode)
	}
	if int64(len(data)) > limit {
		return Response{}, fmt.Errorf("%w: %s %s sent more than %d bytes", ErrTooLarge, method, redact(u), limit)
	}
	return Response{Status: res.StatusCode, ContentType: res.Header.Get("Content-Type"), Body: bytes.Clone(data)}, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// redactRaw is redact for a URL that may not parse.
func redactRaw(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return redact(u)
}

// redact drops credentials and the query from a URL for logs and errors.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}
