package api

import (
	"errors"
	"testing"
)

func FuzzParseBody(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", []byte("FriendlyName=a&VoiceUrl=http%3A%2F%2Fx"))
	f.Add("application/json", []byte(`{"FriendlyName":"a","n":1,"b":true,"l":["x","y"]}`))
	f.Add("application/json; charset=utf-8", []byte(`{"a":{"b":1}}`))
	f.Add("", []byte("a=%zz"))
	f.Add("text/plain", []byte("x"))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		v, err := parseBody(ctype, body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Message == "" {
				t.Fatalf("error is not a precise 4xx: %#v", err)
			}
			return
		}
		if v == nil {
			t.Fatal("nil values without error")
		}
		for k, vals := range v {
			if len(vals) == 0 && k != "" {
				t.Fatalf("parameter %q with no values", k)
			}
		}
	})
}
