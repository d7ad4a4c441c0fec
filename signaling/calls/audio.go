package calls

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/signaling/media"
)

// audioCache keeps decoded µ-law audio by key (a Play URL, or a Say's text
// and voice), least recently used first out, within a byte budget.
type audioCache struct {
	mu     sync.Mutex
	max    int
	size   int
	order  *list.List // of *audioEntry, front = most recent
	byKey  map[string]*list.Element
	client *http.Client
}

type audioEntry struct {
	key  string
	data []byte
}

func newAudioCache(max int) *audioCache {
	return &audioCache{max: max, order: list.New(), byKey: map[string]*list.Element{}, client: &http.Client{Timeout: 15 * time.Second}}
}

func (c *audioCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*audioEntry).data, true
	}
	return nil, false
}

func (c *audioCache) put(key string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(data) > c.max/4 {
		return // too big to be worth keeping
	}
	if el, ok := c.byKey[key]; ok {
		c.size -= len(el.Value.(*audioEntry).data)
		c.order.Remove(el)
	}
	c.byKey[key] = c.order.PushFront(&audioEntry{key: key, data: data})
	c.size += len(data)
	for c.size > c.max {
		last := c.order.Back()
		e := last.Value.(*audioEntry)
		c.order.Remove(last)
		delete(c.byKey, e.key)
		c.size -= len(e.data)
	}
}

// load returns a Play URL's audio as 8 kHz µ-law, from the cache or fetched.
func (c *audioCache) load(ctx context.Context, rawURL string) ([]byte, error) {
	if data, ok := c.get(rawURL); ok {
		return data, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("play %s: %w", redactURL(rawURL), err)
	}
	res, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("play %s: %w", redactURL(rawURL), unwrapURLError(err))
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("play %s: answered %d", redactURL(rawURL), res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, media.MaxAudioBytes+1))
	if err != nil {
		return nil, fmt.Errorf("play %s: %w", redactURL(rawURL), err)
	}
	if len(body) > media.MaxAudioBytes {
		return nil, fmt.Errorf("play %s: larger than %d bytes", redactURL(rawURL), media.MaxAudioBytes)
	}
	data, err := media.DecodeAudio(body)
	if err != nil {
		return nil, fmt.Errorf("play %s: %w", redactURL(rawURL), err)
	}
	c.put(rawURL, data)
	return data, nil
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// DefaultTTSCommand speaks with espeak-ng, reading the text on stdin.
var DefaultTTSCommand = []string{"espeak-ng", "-w", "{out}", "-v", "{language}", "--stdin"}

// ErrNoTTS is returned by Say when no text-to-speech command is configured
// or it is not installed.
var ErrNoTTS = errors.New("no text-to-speech command: install espeak-ng or set calls.tts_command")

// speak renders text with the TTS command into 8 kHz µ-law.
func (e *Engine) speak(ctx context.Context, text, voice, language string) ([]byte, error) {
	if len(e.cfg.TTSCommand) == 0 {
		return nil, ErrNoTTS
	}
	key := "say\x00" + voice + "\x00" + language + "\x00" + text
	if data, ok := e.audio.get(key); ok {
		return data, nil
	}
	if _, err := exec.LookPath(e.cfg.TTSCommand[0]); err != nil {
		return nil, fmt.Errorf("%w (%s: %v)", ErrNoTTS, e.cfg.TTSCommand[0], err)
	}
	dir, err := os.MkdirTemp("", "parley-tts-")
	if err != nil {
		return nil, fmt.Errorf("say: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "say.wav")
	if language == "" {
		language = "en"
	}
	repl := strings.NewReplacer("{text}", text, "{voice}", voice, "{language}", strings.ToLower(language), "{out}", out)
	args := make([]string, 0, len(e.cfg.TTSCommand)-1)
	textInArgs := false
	for _, a := range e.cfg.TTSCommand[1:] {
		textInArgs = textInArgs || strings.Contains(a, "{text}")
		args = append(args, repl.Replace(a))
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.TTSCommand[0], args...) // argv, never a shell: text cannot inject commands
	if !textInArgs {
		cmd.Stdin = strings.NewReader(text) // text that starts with "-" is never taken for an option
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("say: %s: %w: %s", e.cfg.TTSCommand[0], err, strings.TrimSpace(string(msg)))
	}
	wav, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("say: the TTS command wrote no audio: %w", err)
	}
	data, err := media.DecodeAudio(wav)
	if err != nil {
		return nil, fmt.Errorf("say: %w", err)
	}
	e.audio.put(key, data)
	return data, nil
}
