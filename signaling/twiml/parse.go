package twiml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
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
		s := &Say{Pos: n.pos, Voice: a.str("voice", ""), Language: a.str("language", ""), Loop: a.integer("loop", 1, 1, 100)}
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
		err = errors.Join(noText(n), noChildren(n))
		v = &Pause{Pos: n.pos, Length: a.seconds("length", 1, 0, 600)}
	case "Dial":
		v, err = dial(n, a)
	case "Gather":
		v, err = gather(n, a)
	case "Record":
		err = errors.Join(noText(n), noChildren(n))
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
		err = errors.Join(noText(n), noChildren(n))
		v = &Hangup{Pos: n.pos}
	case "Reject":
		err = errors.Join(noText(n), noChildren(n))
		v = &Reject{Pos: n.pos, Reason: a.enum("reason", "rejected", "rejected", "busy")}
	case "Message":
		v, err = message(n, a)
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

func dial(n *node, a *attrs) (Verb, error) {
	d := &Dial{Pos: n.pos, Action: a.str("action", ""), Method: a.method("method"),
		Timeout: a.seconds("timeout", 30, 1, 600), CallerID: a.str("callerId", ""),
		TimeLimit: a.seconds("timeLimit", 14400, 1, 86400), AnswerOnBridge: a.boolean("answerOnBridge", false),
		HangupOnStar: a.boolean("hangupOnStar", false)}
	d.Record = a.enum("record", "do-not-record", "do-not-record", "record-from-answer", "record-from-ringing",
		"record-from-answer-dual", "record-from-ringing-dual", "true", "false")
	switch d.Record {
	case "true":
		d.Record = "record-from-answer"
	case "false":
		d.Record = "do-not-record"
	}
	text := strings.TrimSpace(n.text.String())
	if text != "" && len(n.children) > 0 {
		return nil, errAt(n, "has both a number as text and nested nouns; use <Number>")
	}
	if text != "" {
		if !validNumber(text) {
			return nil, errAt(n, "%q is not a dialable number (digits, optional leading +, * and #)", text)
		}
		d.Targets = append(d.Targets, &Number{Pos: n.pos, Number: text})
	}
	for _, c := range n.children {
		ca := &attrs{n: c}
		var t DialTarget
		switch c.name {
		case "Client":
			id, err := leafText(c, "the client identity")
			if err != nil {
				return nil, err
			}
			if strings.ContainsAny(id, " \t\r\n<>\"@:;") {
				return nil, errAt(c, "identity %q contains a character not allowed in an identity", id)
			}
			t = &Client{Pos: c.pos, Identity: id, URL: ca.str("url", ""), Method: ca.method("method"), StatusCallback: ca.str("statusCallback", "")}
		case "Sip":
			uri, err := leafText(c, "a sip: or sips: URI")
			if err != nil {
				return nil, err
			}
			if !strings.HasPrefix(uri, "sip:") && !strings.HasPrefix(uri, "sips:") {
				return nil, errAt(c, "%q is not a sip: or sips: URI", uri)
			}
			t = &Sip{Pos: c.pos, URI: uri, Username: ca.str("username", ""), Password: ca.str("password", ""), URL: ca.str("url", ""), Method: ca.method("method")}
		case "Number":
			num, err := leafText(c, "the number to dial")
			if err != nil {
				return nil, err
			}
			if !validNumber(num) {
				return nil, errAt(c, "%q is not a dialable number (digits, optional leading +, * and #)", num)
			}
			t = &Number{Pos: c.pos, Number: num, SendDigits: ca.digits("sendDigits", "0123456789*#wW"), URL: ca.str("url", ""), Method: ca.method("method")}
		default:
			return nil, errAt(c, "is not a supported noun of <Dial> (Client, Sip, Number)")
		}
		if ca.err != nil {
			return nil, ca.err
		}
		d.Targets = append(d.Targets, t)
	}
	if len(d.Targets) == 0 {
		return nil, errAt(n, "needs a number as text or a nested <Client>, <Sip> or <Number>")
	}
	return d, nil
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
		Input: a.enum("input", "dtmf", "dtmf")}
	if _, set := a.get("finishOnKey"); !set {
		g.FinishOnKey = "#"
	}
	if len(g.FinishOnKey) > 1 {
		return nil, errAt(n, "finishOnKey must be one key, got %q", g.FinishOnKey)
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
