package twiml

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits that keep a hostile document from costing more than it is worth.
const (
	MaxBytes    = 64 << 10 // the call engine refuses larger webhook replies before parsing
	maxDepth    = 16
	maxElements = 2000
)

// ParseError says what is wrong and where.
type ParseError struct {
	Line, Col int
	Element   string // the element at fault, "" when the document as a whole is
	Msg       string
}

func (e *ParseError) Error() string {
	if e.Element == "" {
		return fmt.Sprintf("twiml: line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("twiml: line %d: <%s>: %s", e.Line, e.Element, e.Msg)
}

type node struct {
	name     string
	pos      Pos
	attrs    []xml.Attr
	text     strings.Builder // direct character data
	all      strings.Builder // character data of the element and its descendants, in order
	children []*node
}

// Parse parses a TwiML document.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxBytes {
		return nil, &ParseError{Line: 1, Msg: fmt.Sprintf("document larger than %d bytes", MaxBytes)}
	}
	if !utf8.Valid(data) {
		return nil, &ParseError{Line: 1, Msg: "document is not valid UTF-8"}
	}
	root, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	if root.name != "Response" {
		return nil, &ParseError{Line: root.pos.Line, Col: root.pos.Col, Element: root.name, Msg: "the root element must be <Response>"}
	}
	if err := noText(root); err != nil {
		return nil, err
	}
	doc := &Document{}
	for _, n := range root.children {
		v, err := verb(n)
		if err != nil {
			return nil, err
		}
		doc.Verbs = append(doc.Verbs, v)
	}
	return doc, nil
}

func parseTree(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	dec.CharsetReader = func(label string, _ io.Reader) (io.Reader, error) {
		return nil, fmt.Errorf("encoding %q is not supported; use UTF-8", label)
	}
	var root *node
	var stack []*node
	count := 0
	for {
		line, col := dec.InputPos()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, &ParseError{Line: se.Line, Msg: "malformed XML: " + se.Msg}
			}
			return nil, &ParseError{Line: line, Msg: "malformed XML: " + err.Error()}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			count++
			if count > maxElements {
				return nil, &ParseError{Line: line, Msg: fmt.Sprintf("more than %d elements", maxElements)}
			}
			if len(stack) >= maxDepth {
				return nil, &ParseError{Line: line, Element: t.Name.Local, Msg: fmt.Sprintf("nested deeper than %d", maxDepth)}
			}
			n := &node{name: t.Name.Local, pos: Pos{Line: line, Col: col}, attrs: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, &ParseError{Line: line, Element: n.name, Msg: "only one root element is allowed"}
				}
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, &ParseError{Line: line, Msg: "text outside the root element"}
				}
				continue
			}
			stack[len(stack)-1].text.Write(t)
			for _, n := range stack {
				n.all.Write(t)
			}
		case xml.Directive:
			return nil, &ParseError{Line: line, Msg: "DOCTYPE and other directives are not allowed"}
		case xml.Comment, xml.ProcInst:
		}
	}
	if root == nil {
		return nil, &ParseError{Line: 1, Msg: "empty document: want <Response>"}
	}
	return root, nil
}

// deepText returns the text of n and, for SSML-style markup, of its
// descendants, in document order with white space folded.
func deepText(n *node) string {
	return strings.Join(strings.Fields(n.all.String()), " ")
}

func errAt(n *node, format string, args ...any) *ParseError {
	return &ParseError{Line: n.pos.Line, Col: n.pos.Col, Element: n.name, Msg: fmt.Sprintf(format, args...)}
}

func noText(n *node) error {
	if strings.TrimSpace(n.text.String()) != "" {
		return errAt(n, "takes no text")
	}
	return nil
}

func noChildren(n *node) error {
	if len(n.children) > 0 {
		return errAt(n, "takes no nested elements, found <%s>", n.children[0].name)
	}
	return nil
}

func leafText(n *node, what string) (string, error) {
	if err := noChildren(n); err != nil {
		return "", err
	}
	s := strings.TrimSpace(n.text.String())
	if s == "" && what != "" {
		return "", errAt(n, "needs %s as its text", what)
	}
	return s, nil
}

func verb(n *node) (Verb, error) {
	a := &attrs{n: n}
	var v Verb
	var err error
	switch n.name {
	case "Say":
		s := &Say{Pos: n.pos, Voice: a.str("voice", ""), Language: a.str("language", ""), Loop: a.integer("loop", 1, 0, 1000)}
		if s.Text = deepText(n); s.Text == "" {
			err = errAt(n, "needs the text to speak")
		}
		v = s
	case "Play":
		p := &Play{Pos: n.pos, Loop: a.integer("loop", 1, 0, 1000), Digits: a.digits("digits", "0123456789*#wW")}
		p.URL, err = leafText(n, "")
		if err == nil && p.URL == "" && p.Digits == "" {
			err = errAt(n, "needs an audio URL as its text, or a digits attribute")
		}
		v = p
	case "Pause":
		err = empty(n)
		v = &Pause{Pos: n.pos, Length: a.seconds("length", 1, 0, 600)}
	case "Dial":
		v, err = dial(n, a)
	case "Gather":
		v, err = gather(n, a)
	case "Record":
		err = empty(n)
		v = &Record{Pos: n.pos, Action: a.str("action", ""), Method: a.method("method"),
			MaxLength: a.seconds("maxLength", 3600, 1, 14400), Timeout: a.seconds("timeout", 5, 0, 600),
			FinishOnKey: a.digits("finishOnKey", "0123456789*#"), PlayBeep: a.boolean("playBeep", true),
			Trim: a.enum("trim", "trim-silence", "trim-silence", "do-not-trim")}
		if _, set := a.get("finishOnKey"); !set {
			v.(*Record).FinishOnKey = "1234567890*#"
		}
	case "Redirect":
		r := &Redirect{Pos: n.pos, Method: a.method("method")}
		r.URL, err = leafText(n, "a URL")
		v = r
	case "Hangup":
		err = empty(n)
		v = &Hangup{Pos: n.pos}
	case "Reject":
		err = empty(n)
		v = &Reject{Pos: n.pos, Reason: a.enum("reason", "rejected", "rejected", "busy")}
	case "Message":
		v, err = message(n, a)
	case "Enqueue":
		v, err = enqueue(n, a)
	case "Leave":
		err = empty(n)
		v = &Leave{Pos: n.pos}
	case "Refer":
		v, err = refer(n, a)
	case "Connect":
		c := &Connect{Pos: n.pos, Action: a.str("action", ""), Method: a.method("method")}
		c.Stream, err = oneStream(n, true)
		v = c
	case "Start":
		st := &Start{Pos: n.pos, Action: a.str("action", ""), Method: a.method("method")}
		st.Stream, err = oneStream(n, false)
		v = st
	case "Stop":
		v, err = stop(n)
	default:
		return nil, errAt(n, "unknown verb")
	}
	if a.err != nil { // a bad attribute explains more than what follows from it
		return nil, a.err
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// empty requires an element with neither text nor nested elements.
func empty(n *node) error {
	return errors.Join(noText(n), noChildren(n))
}

func dial(n *node, a *attrs) (Verb, error) {
	d := &Dial{Pos: n.pos, Action: a.str("action", ""), Method: a.method("method"),
		Timeout: a.seconds("timeout", 30, 1, 600), CallerID: a.str("callerId", ""),
		TimeLimit: a.seconds("timeLimit", 14400, 1, 86400), AnswerOnBridge: a.boolean("answerOnBridge", false),
		HangupOnStar: a.boolean("hangupOnStar", false), RingTone: a.enum("ringTone", "", ringTones...),
		RecordingChannels:       a.enum("recordingChannels", "", "mono", "dual"),
		RecordingTrack:          a.enum("recordingTrack", "both", "both", "inbound", "outbound"),
		RecordingStatusCallback: a.str("recordingStatusCallback", ""), RecordingStatusCallbackMethod: a.method("recordingStatusCallbackMethod"),
		RecordingStatusCallbackEvent: a.events("recordingStatusCallbackEvent", []string{"completed"}, recordingEvents...),
		Trim:                         a.enum("trim", "do-not-trim", "trim-silence", "do-not-trim"),
		ReferURL:                     a.str("referUrl", ""), ReferMethod: a.method("referMethod"),
		Sequential: a.boolean("sequential", false)}
	d.Record = a.enum("record", "do-not-record", "do-not-record", "record-from-answer", "record-from-ringing",
		"record-from-answer-dual", "record-from-ringing-dual", "true", "false")
	switch d.Record {
	case "true":
		d.Record = "record-from-answer"
	case "false":
		d.Record = "do-not-record"
	}
	if strings.HasSuffix(d.Record, "-dual") && d.RecordingChannels == "" {
		d.RecordingChannels = "dual"
	}
	text := strings.TrimSpace(n.text.String())
	if text != "" && len(n.children) > 0 {
		return nil, errAt(n, "has both a number as text and nested nouns; use <Number>")
	}
	if text != "" {
		if !validNumber(text) {
			return nil, errAt(n, "%q is not a dialable number (digits, optional leading +, * and #)", text)
		}
		d.Targets = append(d.Targets, &Number{Pos: n.pos, Number: text, Method: "POST", StatusCallbackMethod: "POST",
			StatusCallbackEvent: []string{"completed"}})
	}
	for _, c := range n.children {
		ca := &attrs{n: c}
		var t DialTarget
		var err error
		switch c.name {
		case "Client":
			t, err = clientNoun(c, ca)
		case "Sip":
			t, err = sipNoun(c, ca)
		case "Number":
			t, err = numberNoun(c, ca)
		case "Conference":
			t, err = conferenceNoun(c, ca)
		case "Queue":
			q := &Queue{Pos: c.pos, URL: ca.str("url", ""), Method: ca.method("method")}
			q.Name, err = leafText(c, "the queue name")
			t = q
		default:
			return nil, errAt(c, "is not a supported noun of <Dial> (Client, Sip, Number, Conference, Queue)")
		}
		if ca.err != nil {
			return nil, ca.err
		}
		if err != nil {
			return nil, err
		}
		d.Targets = append(d.Targets, t)
	}
	if len(d.Targets) == 0 {
		return nil, errAt(n, "needs a number as text or a nested <Client>, <Sip>, <Number>, <Conference> or <Queue>")
	}
	if len(d.Targets) > 1 {
		for _, t := range d.Targets {
			switch t.(type) {
			case *Conference, *Queue:
				p := t.Position()
				return nil, &ParseError{Line: p.Line, Col: p.Col, Element: t.Noun(), Msg: "must be the only noun of its <Dial>"}
			}
		}
	}
	return d, nil
}

// ringTones are the ringback tones <Dial ringTone> names.
var ringTones = []string{"at", "au", "bg", "br", "be", "ch", "cl", "cn", "cz", "de", "dk", "ee", "es", "fi", "fr", "gr",
	"hu", "il", "in", "it", "lt", "jp", "mx", "my", "nl", "no", "nz", "ph", "pl", "pt", "ru", "se", "sg", "th", "uk", "us",
	"us-old", "tw", "ve", "za"}

var (
	callEvents      = []string{"initiated", "ringing", "answered", "completed"}
	recordingEvents = []string{"in-progress", "completed", "absent"}
	conferenceEvent = []string{"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"}
)

// progress reads a noun's call-progress callback attributes.
func progress(a *attrs) (cb, method string, events []string) {
	return a.str("statusCallback", ""), a.method("statusCallbackMethod"), a.events("statusCallbackEvent", []string{"completed"}, callEvents...)
}

func clientNoun(c *node, a *attrs) (DialTarget, error) {
	cl := &Client{Pos: c.pos, URL: a.str("url", ""), Method: a.method("method")}
	cl.StatusCallback, cl.StatusCallbackMethod, cl.StatusCallbackEvent = progress(a)
	text := strings.TrimSpace(c.text.String())
	for _, k := range c.children {
		switch k.name {
		case "Identity":
			if cl.Identity != "" || text != "" {
				return nil, errAt(k, "the client identity is given twice")
			}
			id, err := leafText(k, "the client identity")
			if err != nil {
				return nil, err
			}
			cl.Identity = id
		case "Parameter":
			p, err := parameter(k)
			if err != nil {
				return nil, err
			}
			cl.Parameters = append(cl.Parameters, p)
		default:
			return nil, errAt(k, "cannot be nested in <Client> (only Identity, Parameter)")
		}
	}
	if cl.Identity == "" {
		cl.Identity = text
	}
	if cl.Identity == "" {
		return nil, errAt(c, "needs the client identity as its text or in <Identity>")
	}
	if strings.ContainsAny(cl.Identity, " \t\r\n<>\"@:;") {
		return nil, errAt(c, "identity %q contains a character not allowed in an identity", cl.Identity)
	}
	return cl, nil
}

func parameter(n *node) (Parameter, error) {
	a := &attrs{n: n}
	if err := empty(n); err != nil {
		return Parameter{}, err
	}
	name, _ := a.get("name")
	value, _ := a.get("value")
	if strings.TrimSpace(name) == "" {
		return Parameter{}, errAt(n, "needs a name attribute")
	}
	return Parameter{Name: strings.TrimSpace(name), Value: value}, nil
}

func sipURI(c *node) (string, error) {
	uri, err := leafText(c, "a sip: or sips: URI")
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(uri, "sip:") && !strings.HasPrefix(uri, "sips:") {
		return "", errAt(c, "%q is not a sip: or sips: URI", uri)
	}
	return uri, nil
}

func sipNoun(c *node, a *attrs) (DialTarget, error) {
	uri, err := sipURI(c)
	if err != nil {
		return nil, err
	}
	t := &Sip{Pos: c.pos, URI: uri, Username: a.str("username", ""), Password: a.str("password", ""), URL: a.str("url", ""),
		Method: a.method("method"), MachineDetection: machineDetection(a)}
	t.StatusCallback, t.StatusCallbackMethod, t.StatusCallbackEvent = progress(a)
	return t, nil
}

func numberNoun(c *node, a *attrs) (DialTarget, error) {
	num, err := leafText(c, "the number to dial")
	if err != nil {
		return nil, err
	}
	if !validNumber(num) {
		return nil, errAt(c, "%q is not a dialable number (digits, optional leading +, * and #)", num)
	}
	t := &Number{Pos: c.pos, Number: num, SendDigits: a.digits("sendDigits", "0123456789*#wW"), URL: a.str("url", ""),
		Method: a.method("method"), BYOC: a.str("byoc", ""), MachineDetection: machineDetection(a)}
	t.StatusCallback, t.StatusCallbackMethod, t.StatusCallbackEvent = progress(a)
	return t, nil
}

func machineDetection(a *attrs) MachineDetection {
	m := MachineDetection{
		Timeout:                 a.seconds("machineDetectionTimeout", 30, 3, 59),
		SpeechThreshold:         a.millis("machineDetectionSpeechThreshold", 2400, 1000, 6000),
		SpeechEndThreshold:      a.millis("machineDetectionSpeechEndThreshold", 1200, 500, 5000),
		SilenceTimeout:          a.millis("machineDetectionSilenceTimeout", 5000, 2000, 10000),
		AMDStatusCallback:       a.str("amdStatusCallback", ""),
		AMDStatusCallbackMethod: a.method("amdStatusCallbackMethod"),
	}
	switch v := a.str("machineDetection", ""); strings.ToLower(v) {
	case "":
	case "enable":
		m.Mode = "Enable"
	case "detectmessageend":
		m.Mode = "DetectMessageEnd"
	default:
		a.fail("machineDetection", "%q must be Enable or DetectMessageEnd", v)
	}
	return m
}

func conferenceNoun(c *node, a *attrs) (DialTarget, error) {
	name, err := leafText(c, "the conference name")
	if err != nil {
		return nil, err
	}
	cf := &Conference{Pos: c.pos, Name: name, Muted: a.boolean("muted", false),
		Beep:                   a.enum("beep", "true", "true", "false", "onEnter", "onExit"),
		StartConferenceOnEnter: a.boolean("startConferenceOnEnter", true), EndConferenceOnExit: a.boolean("endConferenceOnExit", false),
		WaitURL: a.str("waitUrl", ""), WaitMethod: a.method("waitMethod"), MaxParticipants: a.integer("maxParticipants", 250, 2, 250),
		Record: a.enum("record", "do-not-record", "do-not-record", "record-from-start"),
		Trim:   a.enum("trim", "trim-silence", "trim-silence", "do-not-trim"),
		Coach:  a.str("coach", ""), StatusCallback: a.str("statusCallback", ""), StatusCallbackMethod: a.method("statusCallbackMethod"),
		StatusCallbackEvent:     a.events("statusCallbackEvent", nil, conferenceEvent...),
		RecordingStatusCallback: a.str("recordingStatusCallback", ""), RecordingStatusCallbackMethod: a.method("recordingStatusCallbackMethod"),
		RecordingStatusCallbackEvent: a.events("recordingStatusCallbackEvent", []string{"completed"}, recordingEvents...),
		ParticipantLabel:             a.str("participantLabel", ""),
		JitterBufferSize:             a.enum("jitterBufferSize", "large", "off", "small", "medium", "large")}
	if cf.Coach != "" && !isSid(cf.Coach, "CA") {
		a.fail("coach", "%q is not a call sid (CA followed by 32 hex digits)", cf.Coach)
	}
	return cf, nil
}

func isSid(s, prefix string) bool {
	if len(s) != 34 || !strings.HasPrefix(s, prefix) {
		return false
	}
	return allHex(s[2:])
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func validNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r == '*' || r == '#') {
			return false
		}
	}
	return true
}

func gather(n *node, a *attrs) (Verb, error) {
	g := &Gather{Pos: n.pos, Action: a.str("action", ""), Method: a.method("method"),
		Timeout: a.seconds("timeout", 5, 1, 600), NumDigits: a.integer("numDigits", 0, 1, 128),
		FinishOnKey: a.digits("finishOnKey", "0123456789*#"), ActionOnEmptyResult: a.boolean("actionOnEmptyResult", false),
		Input: a.input("input"), Language: a.str("language", "en-US"),
		PartialResultCallback: a.str("partialResultCallback", ""), PartialResultCallbackMethod: a.method("partialResultCallbackMethod"),
		SpeechModel: a.str("speechModel", ""), Enhanced: a.boolean("enhanced", false),
		ProfanityFilter: a.boolean("profanityFilter", true), BargeIn: a.boolean("bargeIn", true)}
	if _, set := a.get("finishOnKey"); !set {
		g.FinishOnKey = "#"
	}
	if len(g.FinishOnKey) > 1 {
		return nil, errAt(n, "finishOnKey must be one key, got %q", g.FinishOnKey)
	}
	switch v := a.str("speechTimeout", ""); v {
	case "":
	case "auto":
		g.SpeechTimeoutAuto = true
	default:
		g.SpeechTimeout = a.seconds("speechTimeout", 0, 1, 600)
	}
	for _, h := range strings.Split(a.str("hints", ""), ",") {
		if h = strings.TrimSpace(h); h != "" {
			g.Hints = append(g.Hints, h)
		}
	}
	if err := noText(n); err != nil {
		return nil, err
	}
	for _, c := range n.children {
		switch c.name {
		case "Say", "Play", "Pause":
			v, err := verb(c)
			if err != nil {
				return nil, err
			}
			g.Prompts = append(g.Prompts, v)
		default:
			return nil, errAt(c, "cannot be nested in <Gather> (only Say, Play, Pause)")
		}
	}
	return g, nil
}

func message(n *node, a *attrs) (Verb, error) {
	m := &Message{Pos: n.pos, To: a.str("to", ""), From: a.str("from", ""), Action: a.str("action", ""), Method: a.method("method")}
	text := strings.TrimSpace(n.text.String())
	for _, c := range n.children {
		switch c.name {
		case "Body":
			if text != "" {
				return nil, errAt(n, "has both text and a <Body>")
			}
			body, err := leafText(c, "")
			if err != nil {
				return nil, err
			}
			text = body
		default:
			return nil, errAt(c, "cannot be nested in <Message> (only Body)")
		}
	}
	if text == "" {
		return nil, errAt(n, "needs a body")
	}
	m.Body = text
	return m, nil
}

func enqueue(n *node, a *attrs) (Verb, error) {
	e := &Enqueue{Pos: n.pos, QueueName: strings.TrimSpace(n.text.String()), Action: a.str("action", ""), Method: a.method("method"),
		WaitURL: a.str("waitUrl", ""), WaitURLMethod: a.method("waitUrlMethod"), MaxQueueSize: a.integer("maxQueueSize", 0, 1, 5000),
		WorkflowSid: a.str("workflowSid", "")}
	for _, c := range n.children {
		if c.name != "Task" {
			return nil, errAt(c, "cannot be nested in <Enqueue> (only Task)")
		}
		if e.Task != nil {
			return nil, errAt(c, "only one <Task> is allowed")
		}
		ta := &attrs{n: c}
		body, err := leafText(c, "the task attributes (a JSON object)")
		if err != nil {
			return nil, err
		}
		if !json.Valid([]byte(body)) || !strings.HasPrefix(body, "{") {
			return nil, errAt(c, "the task attributes must be a JSON object")
		}
		e.Task = &Task{Pos: c.pos, Attributes: body, Priority: ta.integer("priority", 0, 0, 1<<31-1), Timeout: ta.seconds("timeout", 86400, 1, 86400*365)}
		if ta.err != nil {
			return nil, ta.err
		}
	}
	if e.WorkflowSid != "" && !isSid(e.WorkflowSid, "WW") {
		a.fail("workflowSid", "%q is not a workflow sid (WW followed by 32 hex digits)", e.WorkflowSid)
	}
	if e.Task != nil && e.WorkflowSid == "" {
		return nil, errAt(n, "a <Task> needs the workflowSid attribute")
	}
	if e.QueueName == "" && e.WorkflowSid == "" {
		return nil, errAt(n, "needs the queue name as its text")
	}
	return e, nil
}

func refer(n *node, a *attrs) (Verb, error) {
	r := &Refer{Pos: n.pos, Action: a.str("action", ""), Method: a.method("method")}
	if err := noText(n); err != nil {
		return nil, err
	}
	for _, c := range n.children {
		if c.name != "Sip" {
			return nil, errAt(c, "cannot be nested in <Refer> (only Sip)")
		}
		if r.Target != nil {
			return nil, errAt(c, "only one <Sip> is allowed")
		}
		uri, err := sipURI(c)
		if err != nil {
			return nil, err
		}
		r.Target = &Sip{Pos: c.pos, URI: uri, Method: "POST", StatusCallbackMethod: "POST"}
	}
	if r.Target == nil {
		return nil, errAt(n, "needs a nested <Sip> with the transfer target")
	}
	return r, nil
}

// oneStream reads the single <Stream> of a <Connect> (bidirectional: the
// inbound track only) or a <Start>.
func oneStream(n *node, connect bool) (*Stream, error) {
	if err := noText(n); err != nil {
		return nil, err
	}
	verbName := "Start"
	if connect {
		verbName = "Connect"
	}
	var st *Stream
	for _, c := range n.children {
		if c.name != "Stream" {
			return nil, errAt(c, "is not a supported noun of <%s> (Stream)", verbName)
		}
		if st != nil {
			return nil, errAt(c, "only one <Stream> is allowed in a <%s>", verbName)
		}
		var err error
		if st, err = stream(c, connect); err != nil {
			return nil, err
		}
	}
	if st == nil {
		return nil, errAt(n, "needs a nested <Stream>")
	}
	return st, nil
}

func stream(c *node, connect bool) (*Stream, error) {
	a := &attrs{n: c}
	st := &Stream{Pos: c.pos, Name: a.str("name", ""), URL: a.str("url", ""),
		Track:          a.enum("track", "inbound_track", "inbound_track", "outbound_track", "both_tracks"),
		StatusCallback: a.str("statusCallback", ""), StatusCallbackMethod: a.method("statusCallbackMethod")}
	if err := noText(c); err != nil {
		return nil, err
	}
	for _, k := range c.children {
		if k.name != "Parameter" {
			return nil, errAt(k, "cannot be nested in <Stream> (only Parameter)")
		}
		p, err := parameter(k)
		if err != nil {
			return nil, err
		}
		st.Parameters = append(st.Parameters, p)
	}
	if a.err != nil {
		return nil, a.err
	}
	if st.URL == "" {
		return nil, errAt(c, "needs a url attribute")
	}
	if u, err := url.Parse(st.URL); err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
		return nil, errAt(c, "attribute url: %q must be an absolute wss:// (or ws://) URL", st.URL)
	}
	if connect && st.Track != "inbound_track" {
		return nil, errAt(c, "attribute track: a <Connect> stream is bidirectional and takes inbound_track only")
	}
	return st, nil
}

func stop(n *node) (Verb, error) {
	if err := noText(n); err != nil {
		return nil, err
	}
	if len(n.children) != 1 || n.children[0].name != "Stream" {
		if len(n.children) == 0 {
			return nil, errAt(n, "needs a nested <Stream name=…>")
		}
		for _, c := range n.children {
			if c.name != "Stream" {
				return nil, errAt(c, "is not a supported noun of <Stop> (Stream)")
			}
		}
		return nil, errAt(n.children[1], "only one <Stream> is allowed in a <Stop>")
	}
	c := n.children[0]
	if err := empty(c); err != nil {
		return nil, err
	}
	name := (&attrs{n: c}).str("name", "")
	if name == "" {
		return nil, errAt(c, "needs the name of the stream to stop")
	}
	return &Stop{Pos: n.pos, StreamName: name}, nil
}

// attrs reads an element's attributes, keeping the first error.
type attrs struct {
	n   *node
	err *ParseError
}

func (a *attrs) get(name string) (string, bool) {
	for _, at := range a.n.attrs {
		if at.Name.Local == name && at.Name.Space == "" {
			return at.Value, true
		}
	}
	return "", false
}

func (a *attrs) fail(name, format string, args ...any) {
	if a.err == nil {
		a.err = errAt(a.n, "attribute %s: %s", name, fmt.Sprintf(format, args...))
	}
}

func (a *attrs) str(name, def string) string {
	if v, ok := a.get(name); ok {
		return strings.TrimSpace(v)
	}
	return def
}

func (a *attrs) method(name string) string {
	v, ok := a.get(name)
	if !ok {
		return "POST"
	}
	switch m := strings.ToUpper(strings.TrimSpace(v)); m {
	case "GET", "POST":
		return m
	}
	a.fail(name, "%q must be GET or POST", v)
	return "POST"
}

func (a *attrs) integer(name string, def, lo, hi int) int {
	v, ok := a.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		a.fail(name, "%q must be a whole number from %d to %d", v, lo, hi)
		return def
	}
	return n
}

func (a *attrs) seconds(name string, def, lo, hi int) time.Duration {
	return time.Duration(a.integer(name, def, lo, hi)) * time.Second
}

func (a *attrs) millis(name string, def, lo, hi int) time.Duration {
	return time.Duration(a.integer(name, def, lo, hi)) * time.Millisecond
}

// events reads a space- (or comma-) separated list of event names, each one
// of allowed, without repeats.
func (a *attrs) events(name string, def []string, allowed ...string) []string {
	v, ok := a.get(name)
	if !ok {
		return def
	}
	var out []string
	for _, e := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' || r == '\r' }) {
		found := false
		for _, x := range allowed {
			found = found || e == x
		}
		if !found {
			a.fail(name, "%q is not one of %s", e, strings.Join(allowed, ", "))
			return def
		}
		dup := false
		for _, x := range out {
			dup = dup || x == e
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
}

// input reads Gather's input: dtmf, speech, or both (in either order).
func (a *attrs) input(name string) string {
	v, ok := a.get(name)
	if !ok {
		return "dtmf"
	}
	dtmf, speech := false, false
	for _, f := range strings.Fields(v) {
		switch f {
		case "dtmf":
			dtmf = true
		case "speech":
			speech = true
		default:
			a.fail(name, "%q must be dtmf, speech or \"dtmf speech\"", v)
			return "dtmf"
		}
	}
	switch {
	case dtmf && speech:
		return "dtmf speech"
	case speech:
		return "speech"
	case dtmf:
		return "dtmf"
	}
	a.fail(name, "%q must be dtmf, speech or \"dtmf speech\"", v)
	return "dtmf"
}

func (a *attrs) boolean(name string, def bool) bool {
	v, ok := a.get(name)
	if !ok {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true
	case "false":
		return false
	}
	a.fail(name, "%q must be true or false", v)
	return def
}

func (a *attrs) enum(name, def string, allowed ...string) string {
	v, ok := a.get(name)
	if !ok {
		return def
	}
	v = strings.TrimSpace(v)
	for _, x := range allowed {
		if v == x {
			return v
		}
	}
	a.fail(name, "%q must be one of %s", v, strings.Join(allowed, ", "))
	return def
}

func (a *attrs) digits(name, allowed string) string {
	v, ok := a.get(name)
	if !ok {
		return ""
	}
	for _, r := range v {
		if !strings.ContainsRune(allowed, r) {
			a.fail(name, "%q may only contain %s", v, allowed)
			return ""
		}
	}
	return v
}
