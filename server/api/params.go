package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parleyhq/parley/store"
)

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 64 << 10

// decodeParams reads a POST body as parameters: form-encoded (the CPaaS
// convention helper libraries use) or a flat JSON object of strings, numbers
// and booleans (arrays of those give repeated parameters). An empty body gives
// no parameters.
func decodeParams(r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, CodeMalformedBody, "reading body: %v", err)
	}
	if len(body) > MaxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "body larger than %d bytes", MaxBodyBytes)
	}
	return parseBody(r.Header.Get("Content-Type"), body)
}

func parseBody(contentType string, body []byte) (url.Values, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return url.Values{}, nil
	}
	mt := "application/x-www-form-urlencoded"
	if contentType != "" {
		var err error
		mt, _, err = mime.ParseMediaType(contentType)
		if err != nil {
			return nil, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "bad Content-Type %q: %v", contentType, err)
		}
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errorf(http.StatusBadRequest, CodeMalformedBody, "malformed form body: %v", err)
		}
		for k, vals := range v {
			for _, s := range append([]string{k}, vals...) {
				if !utf8.ValidString(s) {
					return nil, errorf(http.StatusBadRequest, CodeMalformedBody, "malformed form body: parameter %q is not valid UTF-8", k)
				}
			}
		}
		return v, nil
	case "application/json":
		return parseJSONParams(body)
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia,
			"Content-Type %q not supported; send application/x-www-form-urlencoded or application/json", mt)
	}
}

func parseJSONParams(body []byte) (url.Values, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, errorf(http.StatusBadRequest, CodeMalformedBody, "malformed JSON body: %v", err)
	}
	if obj == nil {
		return nil, errorf(http.StatusBadRequest, CodeMalformedBody, "malformed JSON body: want an object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errorf(http.StatusBadRequest, CodeMalformedBody, "malformed JSON body: data after the object")
	}
	out := url.Values{}
	for k, v := range obj {
		vals, ok := scalarStrings(v)
		if !ok {
			return nil, errorf(http.StatusBadRequest, CodeMalformedBody, "malformed JSON body: %q must be a string, number, boolean or an array of those", k)
		}
		out[k] = vals
	}
	return out, nil
}

func scalarStrings(v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		return []string{x}, true
	case json.Number:
		return []string{x.String()}, true
	case bool:
		return []string{strconv.FormatBool(x)}, true
	case []any:
		var out []string
		for _, e := range x {
			s, ok := scalarStrings(e)
			if !ok || len(s) != 1 {
				return nil, false
			}
			out = append(out, s[0])
		}
		return out, true
	}
	return nil, false
}

// onlyParams rejects parameters outside the allowed set, and repeated ones.
func onlyParams(v url.Values, allowed ...string) error {
	var unknown []string
	for k, vals := range v {
		if !contains(allowed, k) {
			unknown = append(unknown, k)
			continue
		}
		if len(vals) > 1 {
			return badParam("parameter %s given %d times", k, len(vals))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return badParam("unknown parameter(s) %s; this resource accepts %s", strings.Join(unknown, ", "), strings.Join(allowed, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// param returns the value of k and whether it was given.
func param(v url.Values, k string) (string, bool) {
	vals, ok := v[k]
	if !ok || len(vals) == 0 {
		return "", false
	}
	return vals[0], true
}

// CheckFriendlyName validates a friendly name: at most 64 characters, no control characters.
func CheckFriendlyName(s string) error {
	if utf8.RuneCountInString(s) > 64 {
		return badParam("FriendlyName is longer than 64 characters")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return badParam("FriendlyName contains a control character")
		}
	}
	return nil
}

func checkURL(name, s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 2048 {
		return badParam("%s is longer than 2048 characters", name)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badParam("%s %q is not an absolute http(s) URL", name, s)
	}
	return nil
}

func checkMethod(name, s string) (string, error) {
	switch m := strings.ToUpper(s); m {
	case "", "GET", "POST":
		return m, nil
	}
	return "", badParam("%s %q must be GET or POST", name, s)
}

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// pageParams reads Page and PageSize from the query string.
func pageParams(q url.Values) (store.Page, error) {
	p := store.Page{Size: defaultPageSize}
	if s := q.Get("Page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1_000_000 {
			return p, badParam("Page %q must be a whole number from 0", s)
		}
		p.Page = n
	}
	if s := q.Get("PageSize"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			return p, badParam("PageSize %q must be a whole number from 1 to %d", s, maxPageSize)
		}
		p.Size = n
	}
	return p, nil
}

// listBody is the paged list envelope: the items under key plus the paging fields.
func listBody[T any](r *http.Request, key string, items []T, p store.Page, more bool) map[string]any {
	if items == nil {
		items = []T{}
	}
	pageURI := func(page int) string {
		q := url.Values{}
		for k, v := range r.URL.Query() {
			if k != "Page" && k != "PageSize" && k != "PageToken" {
				q[k] = v
			}
		}
		q.Set("PageSize", strconv.Itoa(p.Size))
		q.Set("Page", strconv.Itoa(page))
		return r.URL.Path + "?" + q.Encode()
	}
	start := p.Page * p.Size
	end := start
	if len(items) > 0 {
		end = start + len(items) - 1
	}
	body := map[string]any{
		key:                 items,
		"uri":               pageURI(p.Page),
		"first_page_uri":    pageURI(0),
		"previous_page_uri": nil,
		"next_page_uri":     nil,
		"page":              p.Page,
		"page_size":         p.Size,
		"start":             start,
		"end":               end,
	}
	if p.Page > 0 {
		body["previous_page_uri"] = pageURI(p.Page - 1)
	}
	if more {
		body["next_page_uri"] = pageURI(p.Page + 1)
	}
	return body
}

func rfc2822(t time.Time) string {
	return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
}

// pagedList answers a list request: one page of rows from query, each
// rendered by render, in the list envelope under key.
func pagedList[T, R any](r *http.Request, key string, query func(store.Page) ([]T, bool, error), render func(T) R) (int, any, error) {
	page, err := pageParams(r.URL.Query())
	if err != nil {
		return 0, nil, err
	}
	rows, more, err := query(page)
	if err != nil {
		return 0, nil, err
	}
	out := make([]R, len(rows))
	for i, row := range rows {
		out[i] = render(row)
	}
	return http.StatusOK, listBody(r, key, out, page, more), nil
}

// friendlyNameOnly reads a body whose only parameter is an optional
// FriendlyName, validated; given says whether it was sent.
func friendlyNameOnly(r *http.Request) (name string, given bool, err error) {
	v, err := decodeParams(r)
	if err != nil {
		return "", false, err
	}
	if err := onlyParams(v, "FriendlyName"); err != nil {
		return "", false, err
	}
	name, given = param(v, "FriendlyName")
	if err := CheckFriendlyName(name); err != nil {
		return "", false, err
	}
	return name, given, nil
}
