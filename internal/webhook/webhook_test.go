package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	twclient "github.com/twilio/twilio-go/client"
)

const token = "12345678901234567890123456789012"

// loopbackPolicy allows the loopback networks the test servers listen on,
// as an operator would with webhooks.allow_networks.
func loopbackPolicy(t testing.TB) *Policy {
	t.Helper()
	allow, err := ParseNetworks([]string{"127.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	return NewPolicy(PolicyOptions{Allow: allow})
}

// TestSignaturesMatchHelperLibrary checks both methods against the
// independent validator of a well-known helper library.
func TestSignaturesMatchHelperLibrary(t *testing.T) {
	type seen struct {
		method, url, sig, parley string
		body                     []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, "http://" + r.Host + r.URL.RequestURI(), r.Header.Get(HeaderCompat), r.Header.Get(HeaderParley), b}
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, "<Response/>")
	}))
	defer srv.Close()
	params := url.Values{"CallSid": {"CA1"}, "From": {"client:alice"}, "To": {"+15550100"}, "CallStatus": {"ringing"}, "Digits": {"1 2&3=4"}}
	v := twclient.NewRequestValidator(token)
	c := &Client{Policy: loopbackPolicy(t)}
	for _, method := range []string{"POST", "GET"} {
		t.Run(method, func(t *testing.T) {
			res, err := c.Do(context.Background(), Request{URL: srv.URL + "/voice?app=1", Method: method, Params: params, AuthToken: token})
			if err != nil || string(res.Body) != "<Response/>" || res.ContentType != "text/xml" {
				t.Fatalf("Do: %+v %v", res, err)
			}
			s := <-got
			var ok bool
			if method == "POST" {
				ok = v.ValidateBody(s.url, s.body, s.sig)
				if s.parley != SignSHA256(token, s.url, params) {
					t.Fatal("X-Parley-Signature does not match")
				}
			} else {
				ok = v.Validate(s.url, map[string]string{}, s.sig)
				if !strings.Contains(s.url, "Digits=1+2%263%3D4") {
					t.Fatalf("GET params not in the query: %s", s.url)
				}
			}
			if !ok {
				t.Fatalf("helper library rejects our %s signature %q for %s", method, s.sig, s.url)
			}
			if v.Validate(s.url, map[string]string{"extra": "x"}, s.sig) {
				t.Fatal("validator accepts tampered params")
			}
		})
	}
}

func TestFailures(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("x", 2048)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := &Client{Timeout: 200 * time.Millisecond, MaxBytes: 1024, Policy: loopbackPolicy(t)}
	tests := []struct {
		url, method string
		want        error
	}{
		{srv.URL + "/500", "POST", ErrStatus},
		{srv.URL + "/slow", "POST", ErrTimeout},
		{srv.URL + "/big", "GET", ErrTooLarge},
	}
	for _, tt := range tests {
		_, err := c.Do(context.Background(), Request{URL: tt.url, Method: tt.method})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.url, err, tt.want)
		}
	}
	for _, bad := range []Request{{URL: "/relative"}, {URL: "ftp://x/y"}, {URL: srv.URL, Method: "PUT"}} {
		if _, err := c.Do(context.Background(), bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	// A refused connection is an error too, and credentials never reach the message.
	_, err := c.Do(context.Background(), Request{URL: "http://user:pw@127.0.0.1:1/x?secret=1"})
	if err == nil || strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err %v", err)
	}
}
