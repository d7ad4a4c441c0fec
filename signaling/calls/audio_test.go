package calls

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/signaling/media"
)

// logBuffer collects a JSON log for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// playFixture runs a call whose /voice plays playURL then redirects to
// /next (which hangs up), and returns what the phone heard and the log.
func playFixture(t *testing.T, a *app, playURL string, tune func(*Config)) (heard []int16, log string) {
	t.Helper()
	a.pages["/voice"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<Response><Play>`+playURL+`</Play><Redirect>/next</Redirect></Response>`)
	}
	a.pages["/next"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<Response><Hangup/></Response>`)
	}
	logs := &logBuffer{}
	f := newFixture(t, nil, func(c *Config) {
		c.Log = slog.New(slog.NewJSONHandler(logs, nil))
		if tune != nil {
			tune(c)
		}
	})
	leg := newRTPLeg(t, f.ports)
	stop := make(chan struct{})
	got := collect(leg.PhoneCapture, stop)
	if err := wait(t, f.runCall(newCall(a), leg), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the last packets land
	close(stop)
	if len(a.requests("/next")) != 1 {
		t.Fatal("the call did not go on after the Play")
	}
	return <-got, logs.String()
}

func TestPlayOfAWebPageFails(t *testing.T) {
	page := strings.Repeat("<html><body>internal admin page: secret=hunter2</body></html>\n", 200) // 12 KB: 1.5 s as µ-law
	a := newApp(t, nil)
	a.pages["/page"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}
	heard, log := playFixture(t, a, "/page", nil)
	if len(heard) != 0 {
		t.Fatalf("the phone heard %d samples of a web page", len(heard))
	}
	if !strings.Contains(log, `"msg":"Play failed; going on with the next verb"`) || !strings.Contains(log, `"code":12300`) ||
		!strings.Contains(log, "text/html is not audio") {
		t.Fatalf("no Play failure with code 12300 in the log:\n%s", log)
	}
	if strings.Contains(log, "hunter2") {
		t.Fatal("the page's content reached the log")
	}
}

func TestPlayThroughTheEgressPolicy(t *testing.T) {
	// An internal service on 127.0.0.2: the engine's policy allows 127.0.0.1
	// only (the application's host), so it stands for a refused network.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	var internalHits atomic.Int32
	internal := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		w.Header().Set("Content-Type", "audio/basic")
		w.Write(bytes.Repeat([]byte{0x42}, 8000))
	})}}
	internal.Start()
	defer internal.Close()
	only := func(c *Config) {
		c.Webhooks = &webhook.Client{Timeout: 2 * time.Second, Policy: loopbackPolicy(t, "127.0.0.1/32")}
	}
	for _, tc := range []struct {
		name, url string
		code      string
	}{
		{"literal", internal.URL + "/secret.ul", `"code":11100`},
		{"redirect", "/bounce", `"code":11100`},
		{"odd host form", "http://2130706433/x.wav", `"code":11100`},
		{"scheme", "file:///etc/passwd", `"code":11100`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, nil)
			a.pages["/bounce"] = func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, internal.URL+"/secret.ul", http.StatusFound)
			}
			heard, log := playFixture(t, a, tc.url, only)
			if len(heard) != 0 || internalHits.Load() != 0 {
				t.Fatalf("heard %d samples; internal service hit %d times", len(heard), internalHits.Load())
			}
			if !strings.Contains(log, tc.code) {
				t.Fatalf("want %s in the log:\n%s", tc.code, log)
			}
		})
	}
	// With the network allowed, the same URL plays.
	a := newApp(t, nil)
	heard, _ := playFixture(t, a, internal.URL+"/secret.ul", nil)
	if len(heard) < 7000 || internalHits.Load() != 1 {
		t.Fatalf("allowed: heard %d samples, hits %d", len(heard), internalHits.Load())
	}
}

func TestPlayCacheIsPerAccount(t *testing.T) {
	a := newApp(t, nil)
	var fetches atomic.Int32
	tone := toneWAV(t, 1000, 200*time.Millisecond)
	a.pages["/voice"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<Response><Play>/t.wav</Play></Response>`)
	}
	a.pages["/t.wav"] = func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write(tone)
	}
	f := newFixture(t, nil, nil)
	acctA, acctB := sid.New(sid.Account), sid.New(sid.Account)
	for i, acct := range []string{acctA, acctA, acctB, acctB, acctA} {
		c := newCall(a)
		c.AccountSid = acct
		if err := wait(t, f.runCall(c, newRTPLeg(t, f.ports)), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		want := map[int]int32{0: 1, 1: 1, 2: 2, 3: 2, 4: 2}[i]
		if got := fetches.Load(); got != want {
			t.Fatalf("after call %d (account %s): %d fetches, want %d", i, acct[:6], got, want)
		}
	}
	if _, ok := f.engine.audio.get(playKey(acctA, a.srv.URL+"/t.wav")); !ok {
		t.Fatal("account A's entry missing")
	}
	if _, ok := f.engine.audio.get(playKey(sid.New(sid.Account), a.srv.URL+"/t.wav")); ok {
		t.Fatal("another account hit the cache")
	}
}

func auFile(enc, rate uint32, data []byte) []byte {
	h := make([]byte, 24)
	copy(h, ".snd")
	binary.BigEndian.PutUint32(h[4:], 24)
	binary.BigEndian.PutUint32(h[8:], uint32(len(data)))
	binary.BigEndian.PutUint32(h[12:], enc)
	binary.BigEndian.PutUint32(h[16:], rate)
	binary.BigEndian.PutUint32(h[20:], 1)
	return append(h, data...)
}

func TestDecodePlayable(t *testing.T) {
	wav := toneWAV(t, 1000, 100*time.Millisecond)
	ulaw := bytes.Repeat([]byte{0x7f, 0x80}, 400)
	pcm16 := make([]byte, 3200) // 100 ms of 16 kHz 16-bit PCM
	tests := []struct {
		name, ct string
		body     []byte
		samples  int // µ-law bytes out; -1: refused
	}{
		{"wav by header", "audio/wav", wav, 800},
		{"wav mislabelled", "text/html", wav, 800},
		{"wav without type", "", wav, 800},
		{"audio/basic raw", "audio/basic", ulaw, 800},
		{"audio/basic with params", "Audio/Basic; rate=8000", ulaw, 800},
		{"au mulaw", "audio/basic", auFile(1, 8000, ulaw), 800},
		{"au mislabelled", "application/octet-stream", auFile(1, 8000, ulaw), 800},
		{"au pcm16 16k", "audio/basic", auFile(3, 16000, pcm16), 800},
		{"au stereo-ish bad header", "audio/basic", append([]byte(".snd"), make([]byte, 30)...), -1},
		{"au g721", "audio/basic", auFile(23, 8000, ulaw), -1},
		{"claims wav", "audio/x-wav", ulaw, -1},
		{"broken wav", "audio/wav", append([]byte("RIFF\x00\x00\x00\x00WAVE"), make([]byte, 8)...), -1},
		{"mp3", "audio/mpeg", []byte("ID3\x03\x00\x00\x00"), -1},
		{"html", "text/html", []byte("<html>secret</html>"), -1},
		{"json", "application/json", []byte(`{"a":1}`), -1},
		{"octet stream", "application/octet-stream", ulaw, -1},
		{"no type", "", ulaw, -1},
		{"empty audio/basic", "audio/basic", nil, -1},
	}
	for _, tt := range tests {
		out, err := decodePlayable(tt.ct, tt.body)
		if tt.samples < 0 {
			if !errors.Is(err, ErrNotAudio) || PlayErrorCode(err) != webhook.CodeInvalidContentType {
				t.Errorf("%s: %d bytes, err %v; want ErrNotAudio", tt.name, len(out), err)
			}
			continue
		}
		if err != nil || len(out) < tt.samples-2 || len(out) > tt.samples+2 {
			t.Errorf("%s: %d bytes, %v; want %d", tt.name, len(out), err, tt.samples)
		}
	}
	if got, _ := decodePlayable("audio/basic", auFile(1, 8000, ulaw)); !bytes.Equal(got, ulaw) {
		t.Error(".au µ-law at 8 kHz is not played as is")
	}
	if r := media.ToneRatio(media.PCMU.Decode(nil, mustDecode(t, wav)), 1000); r < 0.7 {
		t.Errorf("decoded WAV 1 kHz ratio %.2f", r)
	}
}

func mustDecode(t *testing.T, b []byte) []byte {
	out, err := decodePlayable("", b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzDecodePlayable: any body and Content-Type either decode to µ-law or
// fail with ErrNotAudio; nothing that is neither WAV, .au nor declared
// audio/basic is ever played.
func FuzzDecodePlayable(f *testing.F) {
	f.Add("audio/basic", auFile(1, 8000, []byte{1, 2, 3}))
	f.Add("audio/basic", auFile(3, 44100, make([]byte, 100)))
	f.Add("text/html", []byte("<html>"))
	f.Add("audio/wav", []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		out, err := decodePlayable(ct, body)
		if err != nil {
			if !errors.Is(err, ErrNotAudio) {
				t.Fatalf("error not ErrNotAudio: %v", err)
			}
			return
		}
		audioByContent := len(body) >= 12 && string(body[0:4]) == "RIFF" && string(body[8:12]) == "WAVE" || len(body) >= 4 && string(body[0:4]) == ".snd"
		if !audioByContent && !strings.Contains(strings.ToLower(ct), "audio/") {
			t.Fatalf("played a %q body that is not audio", ct)
		}
		_ = out
	})
}
