package calls

import (
	"bytes"
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/signaling/media"
)

// audioCache keeps decoded µ-law audio by key (an account and a Play URL,
// or an account and a Say's text and voice), least recently used first out,
// within a byte budget. Every key starts with the account: one tenant never
// gets (or learns of) audio another fetched.
type audioCache struct {
	mu     sync.Mutex
	max    int
	size   int
	order  *list.List // of *audioEntry, front = most recent
	byKey  map[string]*list.Element
	policy *webhook.Policy // the egress policy every Play fetch goes through
	client *http.Client
}

type audioEntry struct {
	key  string
	data []byte
}

// playTimeout bounds one <Play> fetch.
const playTimeout = 15 * time.Second

func newAudioCache(max int, policy *webhook.Policy) *audioCache {
	return &audioCache{max: max, order: list.New(), byKey: map[string]*list.Element{}, policy: policy, client: policy.HTTPClient(playTimeout)}
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

func playKey(accountSid, rawURL string) string { return "play\x00" + accountSid + "\x00" + rawURL }

// ErrNotAudio means a <Play> URL answered with something that is not audio
// Parley plays (error 12300); it is never played.
var ErrNotAudio = errors.New("not playable audio")

// PlayErrorCode is the platform error code of a failed <Play> fetch.
func PlayErrorCode(err error) int {
	if errors.Is(err, ErrNotAudio) {
		return webhook.CodeInvalidContentType
	}
	return webhook.Code(err)
}

// load returns a Play URL's audio as 8 kHz µ-law, from the account's cache
// or fetched through the egress policy.
func (c *audioCache) load(ctx context.Context, accountSid, rawURL string) ([]byte, error) {
	key := playKey(accountSid, rawURL)
	if data, ok := c.get(key); ok {
		return data, nil
	}
	u, err := c.policy.CheckURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("play %s: %w", redactURL(rawURL), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
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
	data, err := decodePlayable(res.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, fmt.Errorf("play %s: %w", redactURL(rawURL), err)
	}
	c.put(key, data)
	return data, nil
}

// decodePlayable turns a Play body into 8 kHz µ-law when it is audio by its
// content (a RIFF/WAVE or Sun .au header, whatever the Content-Type says) or
// by its Content-Type (audio/basic: headerless 8 kHz µ-law). Anything else —
// a web page, JSON, an MP3 (no decoder here), a body that claims to be WAV
// and is not — is ErrNotAudio: playing it as raw µ-law would hand its bytes
// to the caller.
func decodePlayable(contentType string, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = ""
	}
	switch {
	case len(body) >= 12 && string(body[0:4]) == "RIFF" && string(body[8:12]) == "WAVE":
		a, err := media.DecodeWAV(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotAudio, err)
		}
		return media.PCMU.Encode(nil, a.Resample()), nil
	case len(body) >= 4 && string(body[0:4]) == ".snd":
		return decodeAU(body)
	}
	switch mt {
	case "audio/basic", "audio/x-mulaw", "audio/mulaw", "audio/pcmu":
		if len(body) == 0 {
			return nil, fmt.Errorf("%w: empty %s body", ErrNotAudio, mt)
		}
		return bytes.Clone(body), nil // 8 kHz mono µ-law
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave":
		return nil, fmt.Errorf("%w: Content-Type %s but the body is not a RIFF/WAVE file", ErrNotAudio, mt)
	case "audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg-3":
		return nil, fmt.Errorf("%w: MP3 is not supported by this server; serve WAV or audio/basic", ErrNotAudio)
	case "":
		return nil, fmt.Errorf("%w: no audio Content-Type and no WAV or .au header", ErrNotAudio)
	}
	return nil, fmt.Errorf("%w: Content-Type %s is not audio this server plays (WAV, audio/basic)", ErrNotAudio, mt)
}

// decodeAU decodes a Sun/NeXT .au file (the usual audio/basic container):
// µ-law, A-law, 8- or 16-bit linear PCM, mono, any rate.
func decodeAU(b []byte) ([]byte, error) {
	if len(b) < 24 {
		return nil, fmt.Errorf("%w: .au header truncated", ErrNotAudio)
	}
	off := binary.BigEndian.Uint32(b[4:8])
	enc := binary.BigEndian.Uint32(b[12:16])
	rate := binary.BigEndian.Uint32(b[16:20])
	channels := binary.BigEndian.Uint32(b[20:24])
	if off < 24 || uint64(off) > uint64(len(b)) || rate < 1000 || rate > 192000 || channels != 1 {
		return nil, fmt.Errorf("%w: .au header (offset %d, %d Hz, %d channels) not playable; want mono", ErrNotAudio, off, rate, channels)
	}
	data := b[off:]
	var samples []int16
	switch enc {
	case 1:
		if rate == media.SampleRate {
			return bytes.Clone(data), nil
		}
		samples = media.PCMU.Decode(nil, data)
	case 27:
		samples = media.PCMA.Decode(nil, data)
	case 2:
		samples = make([]int16, len(data))
		for i, v := range data {
			samples[i] = int16(int8(v)) << 8
		}
	case 3:
		samples = make([]int16, len(data)/2)
		for i := range samples {
			samples[i] = int16(binary.BigEndian.Uint16(data[2*i:]))
		}
	default:
		return nil, fmt.Errorf("%w: .au encoding %d not supported (µ-law, A-law, 8/16-bit PCM)", ErrNotAudio, enc)
	}
	return media.PCMU.Encode(nil, media.Audio{Rate: int(rate), Samples: samples}.Resample()), nil
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
func (e *Engine) speak(ctx context.Context, accountSid, text, voice, language string) ([]byte, error) {
	if len(e.cfg.TTSCommand) == 0 {
		return nil, ErrNoTTS
	}
	key := "say\x00" + accountSid + "\x00" + voice + "\x00" + language + "\x00" + text
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
