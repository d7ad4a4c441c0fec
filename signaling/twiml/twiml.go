package twiml

import (
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
	Loop     int // 0 means "until the call ends" is NOT supported for Say: it is 1..100
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
	Targets        []DialTarget
}

// DialTarget is one noun of a Dial.
type DialTarget interface {
	Noun() string
	Position() Pos
}

// Client dials a client identity through its presence (client:<identity>).
type Client struct {
	Pos
	Identity       string
	URL            string // instructions for the called party before bridging
	Method         string
	StatusCallback string
}

// Sip dials a SIP URI.
type Sip struct {
	Pos
	URI      string
	Username string
	Password string
	URL      string
	Method   string
}

// Number dials a telephone number through the configured outbound trunk.
type Number struct {
	Pos
	Number     string
	SendDigits string
	URL        string
	Method     string
}

// Gather collects DTMF digits while playing its nested verbs.
type Gather struct {
	Pos
	Action              string
	Method              string
	Timeout             time.Duration
	NumDigits           int // 0: until finishOnKey or timeout
	FinishOnKey         string
	ActionOnEmptyResult bool
	Input               string
	Prompts             []Verb // Say, Play, Pause
}

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

func (*Client) Noun() string { return "Client" }
func (*Sip) Noun() string    { return "Sip" }
func (*Number) Noun() string { return "Number" }
