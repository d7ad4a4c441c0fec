package twiml

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseFullDocument(t *testing.T) {
	data, err := os.ReadFile("testdata/ivr.xml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range doc.Verbs {
		names = append(names, v.Name())
	}
	if got := strings.Join(names, ","); got != "Say,Gather,Dial,Record,Play,Message,Redirect,Reject,Hangup" {
		t.Fatalf("verbs %s", got)
	}
	say := doc.Verbs[0].(*Say)
	if say.Text != "Welcome to Parley." || say.Voice != "alice" || say.Loop != 2 || say.Line != 4 {
		t.Fatalf("say %+v", say)
	}
	g := doc.Verbs[1].(*Gather)
	if g.Action != "/menu" || g.Method != "GET" || g.NumDigits != 1 || g.Timeout != 7*time.Second || g.FinishOnKey != "*" || len(g.Prompts) != 3 {
		t.Fatalf("gather %+v", g)
	}
	if p := g.Prompts[1].(*Play); p.Loop != 0 || p.URL != "https://example.test/hold.wav" {
		t.Fatalf("nested play %+v", p)
	}
	if p := g.Prompts[2].(*Pause); p.Length != 2*time.Second {
		t.Fatalf("nested pause %+v", p)
	}
	d := doc.Verbs[2].(*Dial)
	if d.Action != "/after-dial" || d.Method != "POST" || d.Timeout != 20*time.Second || d.CallerID != "+15550100" || !d.AnswerOnBridge ||
		d.Record != "record-from-answer" || !d.HangupOnStar || d.TimeLimit != 600*time.Second || len(d.Targets) != 3 {
		t.Fatalf("dial %+v", d)
	}
	if c := d.Targets[0].(*Client); c.Identity != "alice" || c.URL != "/whisper" || c.StatusCallback != "/cs" {
		t.Fatalf("client %+v", c)
	}
	if s := d.Targets[1].(*Sip); s.URI != "sip:bob@127.0.0.1:5080;transport=tcp" || s.Username != "u" || s.Password != "p" {
		t.Fatalf("sip %+v", s)
	}
	if n := d.Targets[2].(*Number); n.Number != "+15550123" || n.SendDigits != "wwww1928" {
		t.Fatalf("number %+v", n)
	}
	r := doc.Verbs[3].(*Record)
	if r.MaxLength != 30*time.Second || r.PlayBeep || r.Action != "/recorded" || r.FinishOnKey != "1234567890*#" || r.Trim != "do-not-trim" {
		t.Fatalf("record %+v", r)
	}
	if p := doc.Verbs[4].(*Play); p.Digits != "1w2#" || p.URL != "" {
		t.Fatalf("digits play %+v", p)
	}
	if m := doc.Verbs[5].(*Message); m.Body != "Call me back" || m.To != "client:bob" {
		t.Fatalf("message %+v", m)
	}
	if r := doc.Verbs[6].(*Redirect); r.URL != "/next" || r.Method != "GET" {
		t.Fatalf("redirect %+v", r)
	}
	if r := doc.Verbs[7].(*Reject); r.Reason != "busy" {
		t.Fatalf("reject %+v", r)
	}
}

func TestDefaults(t *testing.T) {
	doc, err := Parse([]byte(`<Response><Dial>+15550123</Dial><Gather/><Record/><Pause/><Reject/><Play>a.wav</Play></Response>`))
	if err != nil {
		t.Fatal(err)
	}
	d := doc.Verbs[0].(*Dial)
	if d.Timeout != 30*time.Second || d.TimeLimit != 4*time.Hour || d.Method != "POST" || d.Record != "do-not-record" ||
		d.Targets[0].(*Number).Number != "+15550123" {
		t.Fatalf("dial defaults %+v", d)
	}
	g := doc.Verbs[1].(*Gather)
	if g.Timeout != 5*time.Second || g.FinishOnKey != "#" || g.NumDigits != 0 || g.Input != "dtmf" {
		t.Fatalf("gather defaults %+v", g)
	}
	r := doc.Verbs[2].(*Record)
	if r.MaxLength != time.Hour || !r.PlayBeep || r.Timeout != 5*time.Second {
		t.Fatalf("record defaults %+v", r)
	}
	if p := doc.Verbs[3].(*Pause); p.Length != time.Second {
		t.Fatalf("pause default %+v", p)
	}
	if r := doc.Verbs[4].(*Reject); r.Reason != "rejected" {
		t.Fatalf("reject default %+v", r)
	}
	if p := doc.Verbs[5].(*Play); p.Loop != 1 {
		t.Fatalf("play default %+v", p)
	}
	if doc, err := Parse([]byte(`<Response/>`)); err != nil || len(doc.Verbs) != 0 {
		t.Fatalf("empty response: %v", err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		line      int
		element   string
		msg       string
	}{
		{"empty", ``, 1, "", "empty document"},
		{"not xml", `hello`, 1, "", "text outside"},
		{"unclosed", "<Response>\n<Say>hi</Say>\n", 3, "", "malformed XML"},
		{"mismatched", "<Response>\n<Say>hi</Play></Response>", 2, "", "malformed XML"},
		{"wrong root", `<Reply><Say>x</Say></Reply>`, 1, "Reply", "root element must be <Response>"},
		{"two roots", `<Response/><Response/>`, 1, "Response", "only one root"},
		{"unknown verb", "<Response>\n  <Say>a</Say>\n  <Enqueue>q</Enqueue>\n</Response>", 3, "Enqueue", "unknown verb"},
		{"lowercase verb", `<Response><say>a</say></Response>`, 1, "say", "unknown verb"},
		{"say without text", `<Response><Say> </Say></Response>`, 1, "Say", "needs the text"},
		{"play without url", `<Response><Play/></Response>`, 1, "Play", "audio URL"},
		{"bad loop", `<Response><Play loop="-1">a.wav</Play></Response>`, 1, "Play", "attribute loop"},
		{"bad digits", `<Response><Play digits="12x"/></Response>`, 1, "Play", "attribute digits"},
		{"bad method", `<Response><Redirect method="PUT">/x</Redirect></Response>`, 1, "Redirect", "GET or POST"},
		{"redirect without url", `<Response><Redirect/></Response>`, 1, "Redirect", "needs a URL"},
		{"dial nothing", `<Response><Dial/></Response>`, 1, "Dial", "needs a number"},
		{"dial bad number", `<Response><Dial>call bob</Dial></Response>`, 1, "Dial", "not a dialable number"},
		{"dial text and nouns", `<Response><Dial>123<Client>a</Client></Dial></Response>`, 1, "Dial", "both a number"},
		{"dial conference", "<Response>\n<Dial>\n<Conference>room</Conference></Dial></Response>", 3, "Conference", "not a supported noun"},
		{"dial bad timeout", `<Response><Dial timeout="0"><Client>a</Client></Dial></Response>`, 1, "Dial", "attribute timeout"},
		{"dial bad record", `<Response><Dial record="always"><Client>a</Client></Dial></Response>`, 1, "Dial", "attribute record"},
		{"dial bad bool", `<Response><Dial answerOnBridge="yes"><Client>a</Client></Dial></Response>`, 1, "Dial", "true or false"},
		{"client empty", `<Response><Dial><Client/></Dial></Response>`, 1, "Client", "client identity"},
		{"client bad identity", `<Response><Dial><Client>a b</Client></Dial></Response>`, 1, "Client", "not allowed"},
		{"sip not uri", `<Response><Dial><Sip>bob@host</Sip></Dial></Response>`, 1, "Sip", "not a sip:"},
		{"gather bad child", `<Response><Gather><Dial>1</Dial></Gather></Response>`, 1, "Dial", "cannot be nested"},
		{"gather text", `<Response><Gather>press 1</Gather></Response>`, 1, "Gather", "takes no text"},
		{"gather speech", `<Response><Gather input="speech"/></Response>`, 1, "Gather", "attribute input"},
		{"gather two keys", `<Response><Gather finishOnKey="#*"/></Response>`, 1, "Gather", "one key"},
		{"hangup text", `<Response><Hangup>now</Hangup></Response>`, 1, "Hangup", "takes no text"},
		{"pause child", `<Response><Pause><Say>x</Say></Pause></Response>`, 1, "Pause", "no nested"},
		{"reject reason", `<Response><Reject reason="nope"/></Response>`, 1, "Reject", "attribute reason"},
		{"record maxlength", `<Response><Record maxLength="0"/></Response>`, 1, "Record", "attribute maxLength"},
		{"message empty", `<Response><Message to="client:b"/></Response>`, 1, "Message", "needs a body"},
		{"text in response", `<Response>hello<Hangup/></Response>`, 1, "Response", "takes no text"},
		{"doctype", `<!DOCTYPE x [<!ENTITY a "b">]><Response/>`, 1, "", "DOCTYPE"},
		{"undefined entity", `<Response><Say>&xxe;</Say></Response>`, 1, "", "malformed XML"},
		{"latin1", `<?xml version="1.0" encoding="ISO-8859-1"?><Response/>`, 1, "", "malformed XML"},
		{"too large", "<Response>" + strings.Repeat("<Pause/>", MaxBytes/8) + "</Response>", 1, "", "larger than"},
		{"too deep", "<Response><Say>" + strings.Repeat("<b>", 20) + "x" + strings.Repeat("</b>", 20) + "</Say></Response>", 1, "b", "deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if pe.Line != tt.line || pe.Element != tt.element || !strings.Contains(pe.Msg, tt.msg) {
				t.Fatalf("got line %d element %q msg %q (%v); want line %d element %q msg containing %q",
					pe.Line, pe.Element, pe.Msg, err, tt.line, tt.element, tt.msg)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/ivr.xml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`<Response><Dial><Client>alice</Client></Dial></Response>`))
	f.Add([]byte(`<Response><Gather numDigits="4"><Say>pin</Say></Gather></Response>`))
	f.Add([]byte(`<Response><Message><Body>x</Body></Message></Response>`))
	f.Add([]byte(`<?xml version="1.0"?><Response/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Msg == "" {
				t.Fatalf("error without position: %#v", err)
			}
			return
		}
		for _, v := range doc.Verbs {
			if v.Position().Line < 1 {
				t.Fatalf("%s without a line", v.Name())
			}
			if d, ok := v.(*Dial); ok && len(d.Targets) == 0 {
				t.Fatal("Dial without targets parsed")
			}
		}
	})
}
