package calls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/twiml"
)

// ErrNotSupported fails a call whose instructions use a verb or noun that
// parses but that this server does not carry out yet.
var ErrNotSupported = errors.New("not supported by this server")

// loops is how often a Say or Play with loop n plays: 0 means until the
// caller hangs up, within reason.
func loops(n int) int {
	if n == 0 {
		return 1000
	}
	return n
}

// run is one call's interpreter state.
type run struct {
	e        *Engine
	call     *Call
	leg      Leg
	answered bool
	rejected bool
	med      LegMedia
	sender   *media.Sender
	capture  *media.Capture
	docs     int
}

func (r *run) log() *slog.Logger {
	return r.e.cfg.Log.With("call", r.call.Sid, "account", r.call.AccountSid)
}

// answer answers the caller once, anchoring its media and starting to watch
// it for digits.
func (r *run) answer(ctx context.Context, prefer []media.RTPCodec) error {
	if r.answered {
		return nil
	}
	m, err := r.leg.Answer(ctx, prefer)
	if err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	r.med, r.answered = m, true
	r.sender = media.NewSender(m.Endpoint, m.Codec, m.EventPT)
	r.capture = media.NewCapture(m.EventPT)
	m.Endpoint.SetSink(r.capture.Sink)
	r.e.status(r.call, StatusInProgress)
	return nil
}

func (r *run) callerGone() bool {
	select {
	case <-r.leg.Done():
		return true
	default:
		return false
	}
}

// interrupted turns a context error caused by the caller hanging up into ErrHungUp.
func (r *run) interrupted(err error) error {
	if r.callerGone() {
		return ErrHungUp
	}
	return err
}

// loop fetches and runs documents until the call ends. A live control
// (REST redirect or hang-up) cancels whatever runs and takes over.
func (r *run) loop(ctx context.Context, req request) error {
	for {
		r.docs++
		if r.docs > r.e.cfg.MaxDocuments {
			return fmt.Errorf("%w: more than %d instruction documents (a Redirect loop?)", ErrInstructions, r.e.cfg.MaxDocuments)
		}
		stepCtx, cancel := context.WithCancel(ctx)
		var ctl *control
		watch := make(chan struct{})
		go func() {
			defer close(watch)
			select {
			case c := <-r.call.control:
				ctl = &c
				cancel()
			case <-stepCtx.Done():
			}
		}()
		next, err := r.step(stepCtx, req)
		cancel()
		<-watch
		if ctl != nil {
			if ctl.hangup {
				return nil
			}
			next, err = &ctl.req, nil
		}
		if err != nil || next == nil {
			return err
		}
		req = *next
	}
}

// step fetches one document and runs it.
func (r *run) step(ctx context.Context, req request) (*request, error) {
	doc, docURL, err := r.e.fetchWithFallback(ctx, r.call, req)
	if err != nil {
		return nil, r.interrupted(err)
	}
	return r.execDoc(ctx, doc, docURL)
}

func (r *run) execDoc(ctx context.Context, doc *twiml.Document, docURL string) (*request, error) {
	for _, v := range doc.Verbs {
		if err := ctx.Err(); err != nil {
			return nil, r.interrupted(err)
		}
		next, stop, err := r.exec(ctx, v, docURL)
		if err != nil {
			return nil, r.interrupted(err)
		}
		if next != nil || stop {
			return next, nil
		}
	}
	return nil, nil
}

// exec runs one verb. It returns the next document to fetch, or stop when
// the call ends here.
func (r *run) exec(ctx context.Context, v twiml.Verb, docURL string) (next *request, stop bool, err error) {
	switch v := v.(type) {
	case *twiml.Say:
		if err := r.answer(ctx, nil); err != nil {
			return nil, false, err
		}
		audio, err := r.e.speak(ctx, r.call.AccountSid, v.Text, v.Voice, v.Language)
		if err != nil {
			r.log().Error("Say failed; going on with the next verb", "line", v.Line, "err", err)
			return nil, false, nil
		}
		for i := 0; i < loops(v.Loop); i++ {
			if err := r.sender.PlayULaw(ctx, audio); err != nil {
				return nil, false, err
			}
		}
	case *twiml.Play:
		if err := r.answer(ctx, nil); err != nil {
			return nil, false, err
		}
		return nil, false, r.play(ctx, v, docURL)
	case *twiml.Pause:
		if !r.answered { // a leading Pause delays answering
			select {
			case <-time.After(v.Length):
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			return nil, false, nil
		}
		return nil, false, r.sender.Silence(ctx, v.Length)
	case *twiml.Gather:
		if err := r.answer(ctx, nil); err != nil {
			return nil, false, err
		}
		next, err := r.gather(ctx, v, docURL)
		return next, false, err
	case *twiml.Record:
		if err := r.answer(ctx, nil); err != nil {
			return nil, false, err
		}
		return r.record(ctx, v, docURL)
	case *twiml.Dial:
		return r.dial(ctx, v, docURL)
	case *twiml.Redirect:
		u, err := resolve(docURL, v.URL)
		if err != nil {
			return nil, false, fmt.Errorf("line %d <Redirect>: %w", v.Line, err)
		}
		return &request{URL: u, Method: v.Method}, false, nil
	case *twiml.Hangup:
		return nil, true, nil
	case *twiml.Reject:
		if r.answered {
			return nil, true, nil
		}
		code, status := 603, StatusNoAnswer
		if v.Reason == "busy" {
			code, status = 486, StatusBusy
		}
		r.rejected = true
		if err := r.leg.Reject(ctx, code, ""); err != nil {
			r.log().Warn("reject failed", "err", err)
		}
		r.e.status(r.call, status)
		return nil, true, nil
	case *twiml.Message:
		r.message(ctx, v, docURL)
	default:
		return nil, false, fmt.Errorf("%w: verb <%s> (line %d)", ErrNotSupported, v.Name(), v.Position().Line)
	}
	return nil, false, nil
}

func (r *run) play(ctx context.Context, p *twiml.Play, docURL string) error {
	if p.Digits != "" {
		if err := r.sender.SendDigits(ctx, p.Digits); err != nil {
			r.log().Error("Play digits failed", "line", p.Line, "err", err)
		}
	}
	if p.URL == "" {
		return nil
	}
	u, err := resolve(docURL, p.URL)
	if err != nil {
		r.log().Error("Play URL invalid; going on with the next verb", "line", p.Line, "code", webhook.CodeInvalidURL, "err", err)
		return nil
	}
	audio, err := r.e.audio.load(ctx, r.call.AccountSid, u)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log().Error("Play failed; going on with the next verb", "line", p.Line, "code", PlayErrorCode(err), "err", err)
		return nil
	}
	for i := 0; i < loops(p.Loop); i++ {
		if err := r.sender.PlayULaw(ctx, audio); err != nil {
			return err
		}
	}
	return nil
}

// drain forgets digits and audio that arrived before a verb started listening.
func (r *run) drain() {
	for {
		select {
		case <-r.capture.Digits:
		case <-r.capture.Samples:
		case <-r.leg.Digits():
		default:
			return
		}
	}
}

func (r *run) gather(ctx context.Context, g *twiml.Gather, docURL string) (*request, error) {
	if !g.WantsDTMF() {
		return nil, fmt.Errorf("%w: <Gather input=%q> (line %d): speech recognition", ErrNotSupported, g.Input, g.Line)
	}
	if g.WantsSpeech() {
		r.log().Warn("Gather: speech input is not supported; gathering digits only", "line", g.Line)
	}
	r.drain()
	promptCtx, stopPrompts := context.WithCancel(ctx)
	defer stopPrompts()
	promptDone := make(chan error, 1)
	go func() {
		var err error
		for _, p := range g.Prompts {
			if _, _, err = r.exec(promptCtx, p, docURL); err != nil || promptCtx.Err() != nil {
				break
			}
		}
		promptDone <- err
	}()
	prompting := true
	var timer *time.Timer
	var timeout <-chan time.Time
	var digits, finishedOnKey string
collect:
	for {
		select {
		case <-ctx.Done():
			if prompting {
				<-promptDone
			}
			return nil, ctx.Err()
		case <-promptDone:
			prompting = false
			timer = time.NewTimer(g.Timeout)
			defer timer.Stop()
			timeout = timer.C
		case d := <-r.capture.Digits:
			if r.onDigit(g, d, &digits, &finishedOnKey, timer, &prompting, stopPrompts) {
				break collect
			}
		case d := <-r.leg.Digits():
			if r.onDigit(g, d, &digits, &finishedOnKey, timer, &prompting, stopPrompts) {
				break collect
			}
		case <-timeout:
			break collect
		}
	}
	stopPrompts()
	if prompting {
		<-promptDone
	}
	if digits == "" && !g.ActionOnEmptyResult {
		return nil, nil // nothing pressed: go on with the next verb
	}
	action := g.Action
	if action == "" {
		action = docURL
	}
	u, err := resolve(docURL, action)
	if err != nil {
		return nil, fmt.Errorf("line %d <Gather> action: %w", g.Line, err)
	}
	return &request{URL: u, Method: g.Method, Params: url.Values{"Digits": {digits}, "FinishedOnKey": {finishedOnKey}}}, nil
}

// onDigit adds one pressed key to a Gather and reports whether it is complete.
func (r *run) onDigit(g *twiml.Gather, d byte, digits, finished *string, timer *time.Timer, prompting *bool, stopPrompts func()) bool {
	if *prompting {
		stopPrompts() // barge-in: the first key stops the prompts
	}
	if g.FinishOnKey != "" && d == g.FinishOnKey[0] {
		*finished = g.FinishOnKey
		return true
	}
	*digits += string(d)
	if g.NumDigits > 0 && len(*digits) >= g.NumDigits {
		return true
	}
	if timer != nil {
		timer.Reset(g.Timeout)
	}
	return false
}

// silenceLevel is the RMS below which a 20 ms chunk counts as silence.
const silenceLevel = 300

func rms(s []int16) float64 {
	if len(s) == 0 {
		return 0
	}
	var sum float64
	for _, x := range s {
		sum += float64(x) * float64(x)
	}
	return math.Sqrt(sum / float64(len(s)))
}

func (r *run) record(ctx context.Context, rec *twiml.Record, docURL string) (*request, bool, error) {
	if rec.PlayBeep {
		if err := r.sender.PlayULaw(ctx, media.PCMU.Encode(nil, media.Tone(1000, media.SampleRate/2, 8000))); err != nil {
			return nil, false, err
		}
	}
	r.drain()
	recSid, path, f, w, err := r.newRecording()
	if err != nil {
		return nil, false, err
	}
	trim := rec.Trim == "trim-silence"
	var pending [][]int16 // silent chunks held back until sound follows (trimmed if none does)
	heard := false
	lastSound := time.Now()
	maxLen := time.NewTimer(rec.MaxLength)
	defer maxLen.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	finishedBy := ""
	write := func(chunk []int16) {
		if rms(chunk) >= silenceLevel {
			heard, lastSound = true, time.Now()
			for _, p := range pending {
				w.Write(p)
			}
			pending = pending[:0]
			w.Write(chunk)
			return
		}
		if !trim {
			w.Write(chunk)
		} else if heard {
			pending = append(pending, chunk)
		}
	}
	onKey := func(d byte) bool {
		for i := 0; i < len(rec.FinishOnKey); i++ {
			if rec.FinishOnKey[i] == d {
				finishedBy = string(d)
				return true
			}
		}
		return false
	}
loop:
	for {
		select {
		case <-ctx.Done():
			finishedBy = "hangup"
			break loop
		case chunk := <-r.capture.Samples:
			write(chunk)
		case d := <-r.capture.Digits:
			if onKey(d) {
				break loop
			}
		case d := <-r.leg.Digits():
			if onKey(d) {
				break loop
			}
		case <-maxLen.C:
			break loop
		case <-tick.C:
			if rec.Timeout > 0 && time.Since(lastSound) > rec.Timeout {
				break loop
			}
		}
	}
	if err := w.Close(); err != nil {
		f.Close()
		return nil, false, err
	}
	f.Close()
	samples := w.Samples()
	if samples == 0 {
		os.Remove(path)
		r.log().Info("Record captured no audio; going on with the next verb", "line", rec.Line)
		return nil, finishedBy == "hangup", nil
	}
	recParams := r.recordingDone(recSid, path, samples)
	action := rec.Action
	if action == "" {
		action = docURL
	}
	u, err := resolve(docURL, action)
	if err != nil {
		return nil, false, fmt.Errorf("line %d <Record> action: %w", rec.Line, err)
	}
	recParams.Set("Digits", finishedBy)
	next := &request{URL: u, Method: rec.Method, Params: recParams}
	if finishedBy == "hangup" {
		r.notifyAfterHangup(next)
		return nil, true, nil
	}
	return next, false, nil
}

// newRecording creates the WAV file of a new recording under the account's
// recordings directory.
func (r *run) newRecording() (recSid, path string, f *os.File, w *media.WAVWriter, err error) {
	recSid = sid.New(sid.Recording)
	dir := filepath.Join(r.e.cfg.RecordingsDir, r.call.AccountSid)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", nil, nil, fmt.Errorf("record: %w", err)
	}
	path = filepath.Join(dir, recSid+".wav")
	f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return "", "", nil, nil, fmt.Errorf("record: %w", err)
	}
	w, err = media.NewWAVWriter(f)
	if err != nil {
		f.Close()
		os.Remove(path)
		return "", "", nil, nil, fmt.Errorf("record: %w", err)
	}
	return recSid, path, f, w, nil
}

// recordingDone reports a finished recording of samples and returns the
// parameters an action request tells about it.
func (r *run) recordingDone(recSid, path string, samples int) url.Values {
	dur := time.Duration(samples) * time.Second / media.SampleRate
	if r.e.cfg.Events != nil {
		r.e.cfg.Events.RecordingDone(Recording{Sid: recSid, AccountSid: r.call.AccountSid, CallSid: r.call.Sid, Path: path, Duration: dur, Created: r.e.cfg.Now()})
	}
	recURL := ""
	if r.e.cfg.RecordingURL != nil {
		recURL = r.e.cfg.RecordingURL(r.call.AccountSid, recSid)
	}
	return url.Values{"RecordingSid": {recSid}, "RecordingUrl": {recURL},
		"RecordingDuration": {strconv.Itoa(int(math.Round(dur.Seconds())))}}
}

// notifyAfterHangup requests an action URL for its side effects after the
// caller has gone; its instructions have no one left to run for.
func (r *run) notifyAfterHangup(req *request) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.e.fetch(ctx, r.call, *req); err != nil {
		r.log().Warn("action after hangup failed", "url", redactURL(req.URL), "err", err)
	}
}

// ringback is the North American ring: 440+480 Hz, two seconds on, four off.
func ringback() []byte {
	on := media.SampleRate * 2
	s := make([]int16, media.SampleRate*6)
	a, b := media.Tone(440, on, 4000), media.Tone(480, on, 4000)
	for i := 0; i < on; i++ {
		s[i] = a[i] + b[i]
	}
	return media.PCMU.Encode(nil, s)
}

func (r *run) dial(ctx context.Context, d *twiml.Dial, docURL string) (*request, bool, error) {
	if r.e.cfg.Dialer == nil {
		return nil, false, errors.New("<Dial>: this server has no dialer configured")
	}
	for _, t := range d.Targets {
		switch t.(type) {
		case *twiml.Conference, *twiml.Queue:
			return nil, false, fmt.Errorf("%w: <Dial><%s> (line %d)", ErrNotSupported, t.Noun(), t.Position().Line)
		}
	}
	stopRing := func() {}
	if !d.AnswerOnBridge {
		if err := r.answer(ctx, nil); err != nil {
			return nil, false, err
		}
		ringCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			tone := ringback()
			for ringCtx.Err() == nil {
				if r.sender.PlayULaw(ringCtx, tone) != nil {
					return
				}
			}
		}()
		stopRing = func() { cancel(); <-done }
	}
	offer := r.leg.Offer()
	if r.answered {
		offer = r.med.Codecs
	}
	res, err := r.e.cfg.Dialer.Dial(ctx, DialRequest{
		Call: r.call, Targets: d.Targets, CallerID: d.CallerID, Timeout: d.Timeout, Offer: offer,
		Ringing: func() {
			if !r.answered {
				_ = r.leg.Ringing(ctx)
			}
		},
	})
	stopRing()
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		r.log().Error("Dial failed", "line", d.Line, "err", err)
		res = DialResult{Status: DialFailed}
	}
	status, duration := res.Status, time.Duration(0)
	callerLeft := false
	var recParams url.Values
	if res.Status == DialAnswered {
		var err error
		duration, callerLeft, recParams, err = r.bridge(ctx, d, res)
		if err != nil {
			return nil, false, err
		}
		status = DialCompleted
	}
	if d.Action == "" {
		return nil, callerLeft, nil
	}
	u, err := resolve(docURL, d.Action)
	if err != nil {
		return nil, false, fmt.Errorf("line %d <Dial> action: %w", d.Line, err)
	}
	next := &request{URL: u, Method: d.Method, Params: url.Values{
		"DialCallStatus": {string(status)}, "DialCallSid": {res.CallSid},
		"DialCallDuration": {strconv.Itoa(wholeSeconds(duration))}}}
	for k, v := range recParams {
		next.Params[k] = v
	}
	if callerLeft {
		r.notifyAfterHangup(next)
		return nil, true, nil
	}
	return next, false, nil
}

// bridge connects the caller with the answered party until one hangs up,
// the time limit passes or the caller presses * (hangupOnStar). With
// Dial record set, both sides are recorded into one track; the recording's
// action parameters are returned.
func (r *run) bridge(ctx context.Context, d *twiml.Dial, res DialResult) (time.Duration, bool, url.Values, error) {
	callee := res.Leg
	if err := r.answer(ctx, res.Media.Codecs); err != nil {
		_ = callee.Hangup(context.Background())
		if r.callerGone() { // hung up just as the other party answered
			return 0, true, nil, nil
		}
		return 0, false, nil, err
	}
	star := make(chan struct{}, 1)
	var tap media.Sink
	if d.HangupOnStar {
		det := media.DTMFDetector{PayloadType: r.med.EventPT}
		tap = func(p []byte) {
			if k, ok := det.Feed(p); ok && k == '*' {
				select {
				case star <- struct{}{}:
				default:
				}
			}
		}
	}
	var mix *media.Mixdown
	var recSid, recPath string
	var recFile *os.File
	var tapCallee media.Sink
	if d.Record != "" && d.Record != "do-not-record" {
		var w *media.WAVWriter
		var err error
		if recSid, recPath, recFile, w, err = r.newRecording(); err != nil {
			r.log().Error("Dial record: recording not started", "line", d.Line, "err", err)
		} else {
			mix = media.NewMixdown(w, r.med.Codecs, res.Media.Codecs)
			callerTap := mix.Tap(0)
			if tap != nil {
				star := tap
				tap = func(p []byte) { star(p); callerTap(p) }
			} else {
				tap = callerTap
			}
			tapCallee = mix.Tap(1)
		}
	}
	media.BridgeTaps(r.med.Endpoint, res.Media.Endpoint,
		media.PTMapFor(r.med.Codecs, res.Media.Codecs), media.PTMapFor(res.Media.Codecs, r.med.Codecs), tap, tapCallee)
	start := time.Now()
	limit := time.NewTimer(d.TimeLimit)
	defer limit.Stop()
	callerLeft := false
	select {
	case <-ctx.Done():
		callerLeft = r.callerGone()
	case <-callee.Done():
	case <-limit.C:
	case <-star:
	}
	media.Unbridge(r.med.Endpoint, res.Media.Endpoint)
	r.med.Endpoint.SetSink(r.capture.Sink)
	elapsed := time.Since(start)
	hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := callee.Hangup(hctx); err != nil {
		r.log().Warn("hanging up the dialled party failed", "err", err)
	}
	var recParams url.Values
	if mix != nil {
		err := mix.Close()
		recFile.Close()
		switch samples := mix.Samples(); {
		case err != nil:
			r.log().Error("Dial record: writing the recording failed", "line", d.Line, "err", err)
			os.Remove(recPath)
		case samples == 0:
			r.log().Info("Dial record: no G.711 audio to record (Opus is relayed, not recorded)", "line", d.Line)
			os.Remove(recPath)
		default:
			recParams = r.recordingDone(recSid, recPath, samples)
		}
	}
	if ctx.Err() != nil && !callerLeft {
		return elapsed, false, recParams, ctx.Err()
	}
	return elapsed, callerLeft, recParams, nil
}

// finish ends the call after its instructions ran out, failed or were cut short.
func (r *run) finish(err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch {
	case r.rejected:
	case errors.Is(err, ErrHungUp) || r.callerGone():
		if r.answered {
			r.e.status(r.call, StatusCompleted)
		} else {
			r.e.status(r.call, StatusCanceled)
		}
	case err != nil && !r.answered:
		r.log().Error("call failed", "err", err)
		if rerr := r.leg.Reject(ctx, 500, "Server Internal Error"); rerr != nil {
			r.log().Warn("reject failed", "err", rerr)
		}
		r.e.status(r.call, StatusFailed)
	default:
		if err != nil {
			r.log().Error("call ended by an error", "err", err)
		}
		if herr := r.leg.Hangup(ctx); herr != nil {
			r.log().Warn("hangup failed", "err", herr)
		}
		r.e.status(r.call, StatusCompleted)
	}
}

// message sends a <Message> (to the caller unless it says otherwise); a
// failure is logged and the call goes on, as with Say.
func (r *run) message(ctx context.Context, v *twiml.Message, docURL string) {
	if r.e.cfg.Messages == nil {
		r.log().Error("Message is not available on this server; going on with the next verb", "line", v.Line)
		return
	}
	m := OutboundMessage{AccountSid: r.call.AccountSid, To: v.To, From: v.From, Body: v.Body, Method: v.Method}
	if m.To == "" {
		m.To = r.call.From
		if r.call.Direction != "inbound" {
			m.To = r.call.To
		}
	}
	if m.From == "" {
		m.From = r.call.To
		if r.call.Direction != "inbound" {
			m.From = r.call.From
		}
	}
	if v.Action != "" {
		u, err := resolve(docURL, v.Action)
		if err != nil {
			r.log().Error("Message action", "line", v.Line, "err", err)
		} else {
			m.StatusCallback = u
		}
	}
	if err := r.e.cfg.Messages.SendMessage(ctx, m); err != nil {
		r.log().Error("Message not sent; going on with the next verb", "line", v.Line, "to", m.To, "err", err)
	}
}
