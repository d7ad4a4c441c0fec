package twiml

import (
	"strings"
	"time"
)

// Pos is where an element starts in the document (1-based).
type Pos struct {
	Line, Col int
}

// Position returns p; it lets every verb report where it was written.
func (p Pos) Position() Pos { return p }

// Verb is one instruction of a Response, in document order.
type Verb interface {
	Name() string
	Position() Pos
}

// Document is a parsed <Response>.
type Document struct {
	Verbs []Verb
}

// Say speaks Text through the configured text-to-speech command.
type Say struct {
	Pos
	Text     string
	Voice    string
	Language string
	Loop     int // 1 by default; 0 repeats until the call ends (capped by the engine)
}

// Play streams an audio file (WAV or raw µ-law) or sends DTMF Digits.
type Play struct {
	Pos
	URL    string
	Loop   int    // 1 by default; 0 loops until the call ends (capped by the engine)
	Digits string // 0-9, *, #, w (half-second pause)
}

// Pause waits Length.
type Pause struct {
	Pos
	Length time.Duration
}

// Dial connects the call to other parties; the first to answer wins.
// Conference and Queue are each the only noun of their Dial.
type Dial struct {
	Pos
	Action         string
	Method         string
	Timeout        time.Duration
	CallerID       string
	TimeLimit      time.Duration
	AnswerOnBridge bool
	Record         string // do-not-record, record-from-answer, record-from-ringing, …
	HangupOnStar   bool
	RingTone       string // a country code (us, uk, de, …) or "" for the default ringback
	// RecordingChannels is mono or dual ("" unless set; the -dual record
	// values imply dual). RecordingTrack is both, inbound or outbound.
	RecordingChannels             string
	RecordingTrack                string
	RecordingStatusCallback       string
	RecordingStatusCallbackMethod string
	RecordingStatusCallbackEvent  []string // in-progress, completed, absent (default completed)
	Trim                          string   // trim-silence or do-not-trim (default)
	ReferURL                      string
	ReferMethod                   string
	Sequential                    bool
	Targets                       []DialTarget
}

// DialTarget is one noun of a Dial.
type DialTarget interface {
	Noun() string
	Position() Pos
}

// Parameter is a custom name/value pair (<Parameter name value/>) handed
// to the called client or to a media stream.
type Parameter struct {
	Name, Value string
}

// MachineDetection asks for answering-machine detection on a dialled
// number or SIP URI (machineDetection and its companion attributes).
type MachineDetection struct {
	Mode                    string        // "" (off), Enable or DetectMessageEnd
	Timeout                 time.Duration // machineDetectionTimeout, 3–59 s (default 30)
	SpeechThreshold         time.Duration // 1000–6000 ms (default 2400)
	SpeechEndThreshold      time.Duration // 500–5000 ms (default 1200)
	SilenceTimeout          time.Duration // 2000–10000 ms (default 5000)
	AMDStatusCallback       string
	AMDStatusCallbackMethod string
}

// Client dials a client identity through its presence (client:<identity>).
type Client struct {
	Pos
	Identity             string // the text, or the nested <Identity>
	Parameters           []Parameter
	URL                  string // instructions for the called party before bridging
	Method               string
	StatusCallback       string
	StatusCallbackMethod string
	StatusCallbackEvent  []string // initiated, ringing, answered, completed (default completed)
}

// Sip dials a SIP URI.
type Sip struct {
	Pos
	URI                  string
	Username             string
	Password             string
	URL                  string
	Method               string
	StatusCallback       string
	StatusCallbackMethod string
	StatusCallbackEvent  []string
	MachineDetection     MachineDetection
}

// Number dials a telephone number through the configured outbound trunk.
type Number struct {
	Pos
	Number               string
	SendDigits           string
	URL                  string
	Method               string
	BYOC                 string
	StatusCallback       string
	StatusCallbackMethod string
	StatusCallbackEvent  []string
	MachineDetection     MachineDetection
}

// Conference joins the caller to a named conference room of the account.
type Conference struct {
	Pos
	Name                          string
	Muted                         bool
	Beep                          string // true (default), false, onEnter, onExit
	StartConferenceOnEnter        bool   // default true
	EndConferenceOnExit           bool
	WaitURL                       string // "" plays the built-in hold tone
	WaitMethod                    string
	MaxParticipants               int    // 2–250, default 250
	Record                        string // do-not-record (default) or record-from-start
	Trim                          string // trim-silence (default) or do-not-trim
	Coach                         string // the sid of a participant's call this one whispers to
	StatusCallback                string
	StatusCallbackMethod          string
	StatusCallbackEvent           []string // start, end, join, leave, mute, hold, modify, speaker, announcement
	RecordingStatusCallback       string
	RecordingStatusCallbackMethod string
	RecordingStatusCallbackEvent  []string // in-progress, completed, absent
	ParticipantLabel              string
	JitterBufferSize              string // off, small, medium, large (default)
}

// Queue bridges the caller (an agent) to the front member of a call queue.
type Queue struct {
	Pos
	Name   string
	URL    string // TwiML played to the agent before bridging (a whisper)
	Method string
}

// Gather collects DTMF digits (or speech) while playing its nested verbs.
type Gather struct {
	Pos
	Action                      string
	Method                      string
	Timeout                     time.Duration
	NumDigits                   int // 0: until finishOnKey or timeout
	FinishOnKey                 string
	ActionOnEmptyResult         bool
	Input                       string        // dtmf (default), speech, or "dtmf speech"
	SpeechTimeout               time.Duration // 0 with SpeechTimeoutAuto, or when not set (use Timeout)
	SpeechTimeoutAuto           bool
	Hints                       []string // comma-separated phrases
	Language                    string   // default en-US
	PartialResultCallback       string
	PartialResultCallbackMethod string
	SpeechModel                 string
	Enhanced                    bool
	ProfanityFilter             bool   // default true
	BargeIn                     bool   // default true
	Prompts                     []Verb // Say, Play, Pause
}

// WantsDTMF reports whether the Gather collects digits.
func (g *Gather) WantsDTMF() bool { return strings.Contains(g.Input, "dtmf") }

// WantsSpeech reports whether the Gather recognises speech.
func (g *Gather) WantsSpeech() bool { return strings.Contains(g.Input, "speech") }

// Record records the caller to a WAV file.
type Record struct {
	Pos
	Action      string
	Method      string
	MaxLength   time.Duration
	Timeout     time.Duration // silence that ends the recording
	FinishOnKey string
	PlayBeep    bool
	Trim        string
}

// Redirect fetches new instructions from URL.
type Redirect struct {
	Pos
	URL    string
	Method string
}

// Hangup ends the call.
type Hangup struct{ Pos }

// Reject refuses an unanswered call: busy → 486, rejected → 603.
type Reject struct {
	Pos
	Reason string
}

// Message sends a text message.
type Message struct {
	Pos
	To     string
	From   string
	Action string
	Method string
	Body   string
}

// Enqueue puts the caller in a call queue until an agent dequeues it.
type Enqueue struct {
	Pos
	QueueName     string // "" only with WorkflowSid
	Action        string
	Method        string
	WaitURL       string // TwiML looped for the caller while it waits
	WaitURLMethod string
	MaxQueueSize  int // 0: the queue's own limit; else 1–5000
	WorkflowSid   string
	Task          *Task // with WorkflowSid
}

// Task describes the task an Enqueue with a workflow creates.
type Task struct {
	Pos
	Attributes string // a JSON object
	Priority   int
	Timeout    time.Duration
}

// Leave takes the caller out of the queue it waits in; the Enqueue's action
// runs with QueueResult=leave.
type Leave struct{ Pos }

// Refer transfers a SIP caller elsewhere with a SIP REFER.
type Refer struct {
	Pos
	Action string
	Method string
	Target *Sip // the Refer-To URI
}

// Stream is a media stream to a WebSocket application.
type Stream struct {
	Pos
	Name                 string
	URL                  string // ws:// or wss://
	Track                string // inbound_track (default), outbound_track, both_tracks
	StatusCallback       string
	StatusCallbackMethod string
	Parameters           []Parameter
}

// Connect hands the call to a bidirectional media stream until it closes.
type Connect struct {
	Pos
	Action string
	Method string
	Stream *Stream
}

// Start forks the call's audio to a stream while the call goes on.
type Start struct {
	Pos
	Action string
	Method string
	Stream *Stream
}

// Stop ends a stream started with <Start>, by name.
type Stop struct {
	Pos
	StreamName string
}

func (*Say) Name() string      { return "Say" }
func (*Play) Name() string     { return "Play" }
func (*Pause) Name() string    { return "Pause" }
func (*Dial) Name() string     { return "Dial" }
func (*Gather) Name() string   { return "Gather" }
func (*Record) Name() string   { return "Record" }
func (*Redirect) Name() string { return "Redirect" }
func (*Hangup) Name() string   { return "Hangup" }
func (*Reject) Name() string   { return "Reject" }
func (*Message) Name() string  { return "Message" }
func (*Enqueue) Name() string  { return "Enqueue" }
func (*Leave) Name() string    { return "Leave" }
func (*Refer) Name() string    { return "Refer" }
func (*Connect) Name() string  { return "Connect" }
func (*Start) Name() string    { return "Start" }
func (*Stop) Name() string     { return "Stop" }

func (*Client) Noun() string     { return "Client" }
func (*Sip) Noun() string        { return "Sip" }
func (*Number) Noun() string     { return "Number" }
func (*Conference) Noun() string { return "Conference" }
func (*Queue) Noun() string      { return "Queue" }
