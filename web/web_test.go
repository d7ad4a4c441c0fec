package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMountServesSDKAndPhone(t *testing.T) {
	mux := http.NewServeMux()
	Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tests := []struct {
		path, contentType, contains string
		status                      int
	}{
		{"/sdk/parley.js", "javascript", "export class Device", 200},
		{"/phone/", "text/html", `<script type="module" src="phone.js">`, 200},
		{"/phone/phone.js", "javascript", "from '/sdk/parley.js'", 200},
		{"/phone/phone.css", "text/css", ".phone", 200},
		{"/sdk/missing.js", "", "", 404},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			res, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d", res.StatusCode)
			}
			if tc.status != 200 {
				return
			}
			if ct := res.Header.Get("Content-Type"); !strings.Contains(ct, tc.contentType) {
				t.Fatalf("content type %q", ct)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Fatalf("body lacks %q", tc.contains)
			}
		})
	}
	// /phone redirects to the directory so that relative URLs resolve.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(srv.URL + "/phone")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/phone/" {
		t.Fatalf("/phone: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}
