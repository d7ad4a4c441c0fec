package browsertest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestBrowserRunsPageAndFakeMedia(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><title>t</title><p id=p>hello</p><script>
window.result = null;
navigator.mediaDevices.getUserMedia({audio: true}).then(s => {
  window.result = s.getAudioTracks().length; console.log("tracks", window.result);
}, e => { window.result = "error: " + e; });
</script>`))
	}))
	defer srv.Close()
	b := Start(t)
	ctx := b.Tab()
	var text string
	if err := chromedp.Run(ctx, chromedp.Navigate(srv.URL), chromedp.Text("#p", &text)); err != nil {
		t.Fatal(err)
	}
	if text != "hello" {
		t.Fatalf("text = %q", text)
	}
	// Fake devices and auto-granted permission: getUserMedia yields one track.
	b.Poll(ctx, `window.result === 1`, 10*time.Second)
	t.Setenv("PARLEY_ARTIFACTS", t.TempDir())
	if p := Screenshot(t, ctx, "browsertest"); p == "" {
		t.Fatal("no screenshot")
	} else if st, err := os.Stat(p); err != nil || st.Size() == 0 {
		t.Fatalf("screenshot %s: %v", p, err)
	}
}
