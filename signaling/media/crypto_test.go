package media

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

const key30 = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz" // 30 bytes: AES-128 key + salt

func TestParseCrypto(t *testing.T) {
	tests := []struct {
		in   string
		want Crypto
		ok   bool
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80"}, true},
		{"2 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^20|1:4", Crypto{Tag: 2, Suite: "AES_CM_128_HMAC_SHA1_32", Lifetime: 1 << 20, MKI: 1, MKILen: 4}, true},
		{"3 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|7:1 KDR=1", Crypto{Tag: 3, Suite: "AES_CM_128_HMAC_SHA1_80", MKI: 7, MKILen: 1, Params: []string{"KDR=1"}}, true},
		{"4 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1048576", Crypto{Tag: 4, Suite: "AES_CM_128_HMAC_SHA1_80", Lifetime: 1048576}, true},
		{"5 AES_CM_128_HMAC_SHA1_80 inline:" + strings.TrimRight(key30, "="), Crypto{Tag: 5, Suite: "AES_CM_128_HMAC_SHA1_80"}, true},
		{"1 AES_CM_128_HMAC_SHA1_80", Crypto{}, false},
		{"x AES_CM_128_HMAC_SHA1_80 inline:" + key30, Crypto{}, false},
		{"-1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, Crypto{}, false},
		{"1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + key30, Crypto{}, false},
		{"1 AES-CM inline:" + key30, Crypto{}, false},
		{"1 AES_CM_128_HMAC_SHA1_80 uri:" + key30, Crypto{}, false},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", Crypto{}, false},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30, Crypto{}, false},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:4|2^20", Crypto{}, false},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^99", Crypto{}, false},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|256:1", Crypto{}, false},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:0", Crypto{}, false},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|2^20", Crypto{}, false},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " -bad", Crypto{}, false},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.Repeat("A", 200), Crypto{}, false},
	}
	for _, tc := range tests {
		got, err := ParseCrypto(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if !tc.ok {
			continue
		}
		if got.Tag != tc.want.Tag || got.Suite != tc.want.Suite || got.Lifetime != tc.want.Lifetime || got.MKI != tc.want.MKI ||
			got.MKILen != tc.want.MKILen || fmt.Sprint(got.Params) != fmt.Sprint(tc.want.Params) || len(got.Key) != 30 {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
		}
		back, err := ParseCrypto(got.String())
		if err != nil || !bytes.Equal(back.Key, got.Key) || back.String() != got.String() {
			t.Errorf("%q: round trip %q: %v", tc.in, got.String(), err)
		}
	}
}

func TestCryptoKeyStaysOutOfLogs(t *testing.T) {
	c, err := ParseCrypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30)
	if err != nil {
		t.Fatal(err)
	}
	s := Session{Crypto: []Crypto{c}}
	for _, f := range []string{"%v", "%+v", "%s", "%#v"} {
		if out := fmt.Sprintf(f, s); strings.Contains(out, key30[:10]) || strings.Contains(out, "89, 83") {
			t.Errorf("%s prints the key: %s", f, out)
		}
	}
	if !strings.Contains(c.String(), key30) {
		t.Fatal("String (the SDP form) lost the key")
	}
}

const savpOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 5000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n" +
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^31\r\n" +
	"a=crypto:2 FANCY_NEW_SUITE inline:" + key30 + "\r\n" +
	"a=crypto:3 garbage\r\n" +
	"a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "\r\n"

func TestSDPSecure(t *testing.T) {
	if _, err := ParseSDP([]byte(savpOffer)); err == nil {
		t.Fatal("ParseSDP accepted RTP/SAVP: callers that cannot key SRTP would answer in the clear")
	}
	s, err := ParseSDPSecure([]byte(savpOffer))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Secure() || s.Proto != ProtoSRTP || len(s.Crypto) != 3 || s.Crypto[0].Tag != 1 || s.Crypto[1].Suite != "FANCY_NEW_SUITE" || s.Crypto[2].Tag != 4 {
		t.Fatalf("session %+v", s)
	}
	back, err := ParseSDPSecure(s.Marshal(1, 1))
	if err != nil || !back.Secure() || len(back.Crypto) != 3 || !bytes.Equal(back.Crypto[0].Key, s.Crypto[0].Key) || back.Crypto[0].Lifetime != 1<<31 {
		t.Fatalf("round trip %+v: %v\n%s", back, err, s.Marshal(1, 1))
	}
	// Plain RTP keeps its shape: no Proto, and Marshal writes RTP/AVP as before.
	plain, err := ParseSDPSecure([]byte(sippOffer))
	if err != nil || plain.Secure() || plain.Proto != ProtoRTP {
		t.Fatalf("plain offer %+v %v", plain, err)
	}
	old, _ := ParseSDP([]byte(sippOffer))
	if old.Proto != "" || !bytes.Contains(old.Marshal(1, 1), []byte("RTP/AVP 8 0 101\r\n")) || bytes.Contains(old.Marshal(1, 1), []byte("crypto")) {
		t.Fatalf("ParseSDP changed: %+v\n%s", old, old.Marshal(1, 1))
	}
	// Best-effort SRTP: crypto lines in an RTP/AVP offer are read by both.
	avpCrypto := strings.Replace(savpOffer, "RTP/SAVP", "RTP/AVP", 1)
	if s, err := ParseSDP([]byte(avpCrypto)); err != nil || len(s.Crypto) != 3 || s.Secure() {
		t.Fatalf("RTP/AVP with crypto: %+v %v", s, err)
	}
	if _, err := ParseSDPSecure([]byte(strings.Replace(savpOffer, "RTP/SAVP", "UDP/TLS/RTP/SAVPF", 1))); err == nil {
		t.Fatal("DTLS-SRTP accepted as SDES")
	}
}

func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4 KDR=1")
	f.Add("2 AES_256_CM_HMAC_SHA1_32 inline:" + key30 + key30)
	f.Fuzz(func(t *testing.T, v string) {
		c, err := ParseCrypto(v)
		if err != nil {
			return
		}
		back, err := ParseCrypto(c.String())
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", v, c.String(), err)
		}
		if back.String() != c.String() {
			t.Fatalf("%q → %q → %q", v, c.String(), back.String())
		}
	})
}
