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
		{"unknown verb", "<Response>\n  <Say>a</Say>\n  <Transfer>q</Transfer>\n</Response>", 3, "Transfer", "unknown verb"},
		{"lowercase new verb", `<Response><enqueue>q</enqueue></Response>`, 1, "enqueue", "unknown verb"},
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
		{"dial unknown noun", "<Response>\n<Dial>\n<Room>r</Room></Dial></Response>", 3, "Room", "not a supported noun"},
		{"conference empty", `<Response><Dial><Conference/></Dial></Response>`, 1, "Conference", "conference name"},
		{"conference with others", "<Response><Dial><Client>a</Client>\n<Conference>r</Conference></Dial></Response>", 2, "Conference", "only noun"},
		{"queue with others", `<Response><Dial><Queue>q</Queue><Number>123</Number></Dial></Response>`, 1, "Queue", "only noun"},
		{"conference bad beep", `<Response><Dial><Conference beep="loud">r</Conference></Dial></Response>`, 1, "Conference", "attribute beep"},
		{"conference too many", `<Response><Dial><Conference maxParticipants="251">r</Conference></Dial></Response>`, 1, "Conference", "attribute maxParticipants"},
		{"conference bad event", `<Response><Dial><Conference statusCallbackEvent="join party">r</Conference></Dial></Response>`, 1, "Conference", "attribute statusCallbackEvent"},
		{"conference bad coach", `<Response><Dial><Conference coach="alice">r</Conference></Dial></Response>`, 1, "Conference", "attribute coach"},
		{"conference bad record", `<Response><Dial><Conference record="true">r</Conference></Dial></Response>`, 1, "Conference", "attribute record"},
		{"conference nested", `<Response><Dial><Conference>r<b/></Conference></Dial></Response>`, 1, "Conference", "no nested"},
		{"queue empty", `<Response><Dial><Queue url="/x"/></Dial></Response>`, 1, "Queue", "queue name"},
		{"queue bad method", `<Response><Dial><Queue method="PUT">q</Queue></Dial></Response>`, 1, "Queue", "GET or POST"},
		{"dial bad ringtone", `<Response><Dial ringTone="mars"><Client>a</Client></Dial></Response>`, 1, "Dial", "attribute ringTone"},
		{"dial bad channels", `<Response><Dial recordingChannels="stereo"><Client>a</Client></Dial></Response>`, 1, "Dial", "attribute recordingChannels"},
		{"dial bad rec event", `<Response><Dial recordingStatusCallbackEvent="done"><Client>a</Client></Dial></Response>`, 1, "Dial", "attribute recordingStatusCallbackEvent"},
		{"dial bad trim", `<Response><Dial trim="yes"><Client>a</Client></Dial></Response>`, 1, "Dial", "attribute trim"},
		{"client identity twice", `<Response><Dial><Client>a<Identity>b</Identity></Client></Dial></Response>`, 1, "Identity", "twice"},
		{"client two identities", `<Response><Dial><Client><Identity>a</Identity><Identity>b</Identity></Client></Dial></Response>`, 1, "Identity", "twice"},
		{"client empty identity", `<Response><Dial><Client><Identity> </Identity></Client></Dial></Response>`, 1, "Identity", "client identity"},
		{"client only params", `<Response><Dial><Client><Parameter name="a" value="b"/></Client></Dial></Response>`, 1, "Client", "client identity"},
		{"client bad child", `<Response><Dial><Client><Say>x</Say>a</Client></Dial></Response>`, 1, "Say", "cannot be nested in <Client>"},
		{"parameter no name", `<Response><Dial><Client>a<Parameter value="b"/></Client></Dial></Response>`, 1, "Parameter", "name attribute"},
		{"parameter text", `<Response><Dial><Client>a<Parameter name="x">y</Parameter></Client></Dial></Response>`, 1, "Parameter", "takes no text"},
		{"client bad event", `<Response><Dial><Client statusCallbackEvent="rung">a</Client></Dial></Response>`, 1, "Client", "attribute statusCallbackEvent"},
		{"number bad amd", `<Response><Dial><Number machineDetection="maybe">123</Number></Dial></Response>`, 1, "Number", "attribute machineDetection"},
		{"number bad amd timeout", `<Response><Dial><Number machineDetectionTimeout="60">123</Number></Dial></Response>`, 1, "Number", "attribute machineDetectionTimeout"},
		{"sip bad amd threshold", `<Response><Dial><Sip machineDetectionSpeechThreshold="100">sip:a@b</Sip></Dial></Response>`, 1, "Sip", "machineDetectionSpeechThreshold"},
		{"enqueue no name", `<Response><Enqueue waitUrl="/w"/></Response>`, 1, "Enqueue", "queue name"},
		{"enqueue bad size", `<Response><Enqueue maxQueueSize="0">q</Enqueue></Response>`, 1, "Enqueue", "attribute maxQueueSize"},
		{"enqueue bad child", `<Response><Enqueue>q<Say>x</Say></Enqueue></Response>`, 1, "Say", "only Task"},
		{"task without workflow", `<Response><Enqueue>q<Task>{}</Task></Enqueue></Response>`, 1, "Enqueue", "workflowSid"},
		{"task not json", `<Response><Enqueue workflowSid="WW0123456789abcdef0123456789abcdef"><Task>{x</Task></Enqueue></Response>`, 1, "Task", "JSON object"},
		{"task json array", `<Response><Enqueue workflowSid="WW0123456789abcdef0123456789abcdef"><Task>[1]</Task></Enqueue></Response>`, 1, "Task", "JSON object"},
		{"two tasks", `<Response><Enqueue workflowSid="WW0123456789abcdef0123456789abcdef"><Task>{}</Task><Task>{}</Task></Enqueue></Response>`, 1, "Task", "only one"},
		{"bad workflow", `<Response><Enqueue workflowSid="x">q</Enqueue></Response>`, 1, "Enqueue", "attribute workflowSid"},
		{"leave text", `<Response><Leave>now</Leave></Response>`, 1, "Leave", "takes no text"},
		{"refer empty", `<Response><Refer/></Response>`, 1, "Refer", "needs a nested <Sip>"},
		{"refer two", `<Response><Refer><Sip>sip:a@b</Sip><Sip>sip:c@d</Sip></Refer></Response>`, 1, "Sip", "only one"},
		{"refer number", `<Response><Refer><Number>123</Number></Refer></Response>`, 1, "Number", "only Sip"},
		{"refer bad uri", `<Response><Refer><Sip>tel:123</Sip></Refer></Response>`, 1, "Sip", "not a sip:"},
		{"refer text", `<Response><Refer>sip:a@b</Refer></Response>`, 1, "Refer", "takes no text"},
		{"connect empty", `<Response><Connect/></Response>`, 1, "Connect", "needs a nested <Stream>"},
		{"connect room", `<Response><Connect><Room>r</Room></Connect></Response>`, 1, "Room", "not a supported noun of <Connect>"},
		{"connect two streams", `<Response><Connect><Stream url="wss://a/b"/><Stream url="wss://a/c"/></Connect></Response>`, 1, "Stream", "only one"},
		{"connect track", `<Response><Connect><Stream url="wss://a/b" track="both_tracks"/></Connect></Response>`, 1, "Stream", "inbound_track only"},
		{"stream no url", `<Response><Start><Stream name="x"/></Start></Response>`, 1, "Stream", "url attribute"},
		{"stream http url", `<Response><Start><Stream url="https://a/b"/></Start></Response>`, 1, "Stream", "wss://"},
		{"stream relative url", `<Response><Start><Stream url="/media"/></Start></Response>`, 1, "Stream", "wss://"},
		{"stream bad track", `<Response><Start><Stream url="wss://a/b" track="left"/></Start></Response>`, 1, "Stream", "attribute track"},
		{"stream bad child", `<Response><Start><Stream url="wss://a/b"><Say>x</Say></Stream></Start></Response>`, 1, "Say", "only Parameter"},
		{"stream param no name", `<Response><Connect><Stream url="wss://a/b"><Parameter value="1"/></Stream></Connect></Response>`, 1, "Parameter", "name attribute"},
		{"start siprec", `<Response><Start><Siprec connectorName="x"/></Start></Response>`, 1, "Siprec", "not a supported noun of <Start>"},
		{"stop empty", `<Response><Stop/></Response>`, 1, "Stop", "needs a nested <Stream"},
		{"stop no name", `<Response><Stop><Stream/></Stop></Response>`, 1, "Stream", "name of the stream"},
		{"stop two", `<Response><Stop><Stream name="a"/><Stream name="b"/></Stop></Response>`, 1, "Stream", "only one"},
		{"stop other", `<Response><Stop><Stream name="a"/><Siprec/></Stop></Response>`, 1, "Siprec", "not a supported noun of <Stop>"},
		{"gather bad speech timeout", `<Response><Gather input="speech" speechTimeout="soon"/></Response>`, 1, "Gather", "attribute speechTimeout"},
		{"gather bad bool", `<Response><Gather enhanced="yes"/></Response>`, 1, "Gather", "attribute enhanced"},
		{"say bad loop", `<Response><Say loop="1001">x</Say></Response>`, 1, "Say", "attribute loop"},
		{"dial bad timeout", `<Response><Dial timeout="0"><Client>a</Client></Dial></Response>`, 1, "Dial", "attribute timeout"},
		{"dial bad record", `<Response><Dial record="always"><Client>a</Client></Dial></Response>`, 1, "Dial", "attribute record"},
		{"dial bad bool", `<Response><Dial answerOnBridge="yes"><Client>a</Client></Dial></Response>`, 1, "Dial", "true or false"},
		{"client empty", `<Response><Dial><Client/></Dial></Response>`, 1, "Client", "client identity"},
		{"client bad identity", `<Response><Dial><Client>a b</Client></Dial></Response>`, 1, "Client", "not allowed"},
		{"sip not uri", `<Response><Dial><Sip>bob@host</Sip></Dial></Response>`, 1, "Sip", "not a sip:"},
		{"gather bad child", `<Response><Gather><Dial>1</Dial></Gather></Response>`, 1, "Dial", "cannot be nested"},
		{"gather text", `<Response><Gather>press 1</Gather></Response>`, 1, "Gather", "takes no text"},
		{"gather bad input", `<Response><Gather input="voice"/></Response>`, 1, "Gather", "attribute input"},
		{"gather empty input", `<Response><Gather input=" "/></Response>`, 1, "Gather", "attribute input"},
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
	if data, err := os.ReadFile("testdata/extended.xml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		`<Response><Dial><Conference beep="onExit" maxParticipants="2" statusCallbackEvent="start end">r</Conference></Dial></Response>`,
		`<Response><Dial><Queue url="/w">support</Queue></Dial></Response>`,
		`<Response><Dial><Client><Identity>a</Identity><Parameter name="k" value="v"/></Client></Dial></Response>`,
		`<Response><Dial><Number machineDetection="Enable" machineDetectionTimeout="5">+1555</Number><Sip username="u">sip:a@b</Sip></Dial></Response>`,
		`<Response><Enqueue waitUrl="/w" maxQueueSize="3">q</Enqueue><Leave/></Response>`,
		`<Response><Enqueue workflowSid="WW0123456789abcdef0123456789abcdef"><Task priority="1">{"a":1}</Task></Enqueue></Response>`,
		`<Response><Refer action="/r"><Sip>sip:x@y</Sip></Refer></Response>`,
		`<Response><Connect><Stream url="wss://h/p"><Parameter name="a" value="b"/></Stream></Connect></Response>`,
		`<Response><Start><Stream name="s" url="wss://h/p" track="both_tracks"/></Start><Stop><Stream name="s"/></Stop></Response>`,
		`<Response><Gather input="dtmf speech" speechTimeout="auto" hints="a,b"><Say>x</Say><Pause/><Play>u</Play></Gather></Response>`,
		`<Response><Say voice="man" language="de-DE" loop="0">x</Say><Play digits="1w#" loop="3"/></Response>`,
	} {
		f.Add([]byte(s))
	}
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
			switch v := v.(type) {
			case *Dial:
				if len(v.Targets) == 0 {
					t.Fatal("Dial without targets parsed")
				}
				for _, tg := range v.Targets {
					switch tg.(type) {
					case *Conference, *Queue:
						if len(v.Targets) != 1 {
							t.Fatalf("<%s> parsed beside other nouns", tg.Noun())
						}
					}
					if tg.Position().Line < 1 {
						t.Fatalf("%s without a line", tg.Noun())
					}
				}
			case *Connect:
				if v.Stream == nil || v.Stream.URL == "" || v.Stream.Track != "inbound_track" {
					t.Fatalf("Connect without a bidirectional stream: %+v", v.Stream)
				}
			case *Start:
				if v.Stream == nil || v.Stream.URL == "" {
					t.Fatal("Start without a stream")
				}
			case *Stop:
				if v.StreamName == "" {
					t.Fatal("Stop without a stream name")
				}
			case *Refer:
				if v.Target == nil || !strings.HasPrefix(v.Target.URI, "sip") {
					t.Fatal("Refer without a SIP target")
				}
			case *Enqueue:
				if v.QueueName == "" && v.WorkflowSid == "" {
					t.Fatal("Enqueue without a queue")
				}
			case *Gather:
				if !v.WantsDTMF() && !v.WantsSpeech() {
					t.Fatal("Gather with no input")
				}
			}
		}
	})
}

func TestParseExtended(t *testing.T) {
	data, err := os.ReadFile("testdata/extended.xml")
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
	if got := strings.Join(names, ","); got != "Say,Gather,Dial,Dial,Dial,Enqueue,Enqueue,Leave,Refer,Start,Connect,Stop" {
		t.Fatalf("verbs %s", got)
	}
	if s := doc.Verbs[0].(*Say); s.Voice != "Polly.Joanna" || s.Language != "en-GB" || s.Loop != 0 || s.Text != "Hello" {
		t.Fatalf("say %+v", s)
	}
	g := doc.Verbs[1].(*Gather)
	if !g.WantsDTMF() || !g.WantsSpeech() || g.Input != "dtmf speech" || !g.SpeechTimeoutAuto || g.SpeechTimeout != 0 ||
		strings.Join(g.Hints, "|") != "sales|support|billing" || g.Language != "fr-FR" || g.PartialResultCallback != "/partial" ||
		g.PartialResultCallbackMethod != "GET" || !g.ActionOnEmptyResult || g.SpeechModel != "phone_call" || !g.Enhanced ||
		g.ProfanityFilter || g.BargeIn || len(g.Prompts) != 3 {
		t.Fatalf("gather %+v", g)
	}
	if _, ok := g.Prompts[1].(*Pause); !ok {
		t.Fatalf("nested pause: %T", g.Prompts[1])
	}
	d := doc.Verbs[2].(*Dial)
	if d.RingTone != "uk" || d.Record != "record-from-answer-dual" || d.RecordingChannels != "dual" || d.RecordingStatusCallback != "/rec" ||
		d.RecordingStatusCallbackMethod != "GET" || strings.Join(d.RecordingStatusCallbackEvent, " ") != "in-progress completed" ||
		d.RecordingTrack != "inbound" || d.Trim != "trim-silence" || d.ReferURL != "/refer" || d.ReferMethod != "POST" || !d.Sequential || len(d.Targets) != 3 {
		t.Fatalf("dial %+v", d)
	}
	c := d.Targets[0].(*Client)
	if c.Identity != "alice" || c.URL != "/whisper" || c.Method != "GET" || c.StatusCallback != "/cs" || c.StatusCallbackMethod != "GET" ||
		strings.Join(c.StatusCallbackEvent, ",") != "initiated,ringing,answered,completed" ||
		len(c.Parameters) != 2 || c.Parameters[0] != (Parameter{"FirstName", "Alice"}) || c.Parameters[1] != (Parameter{"Empty", ""}) {
		t.Fatalf("client %+v", c)
	}
	s := d.Targets[1].(*Sip)
	if s.Username != "u" || s.Password != "p" || s.MachineDetection.Mode != "DetectMessageEnd" || s.MachineDetection.Timeout != 10*time.Second ||
		s.MachineDetection.AMDStatusCallback != "/amd" || s.MachineDetection.SpeechThreshold != 2400*time.Millisecond {
		t.Fatalf("sip %+v", s)
	}
	n := d.Targets[2].(*Number)
	if n.Number != "+15550123" || n.SendDigits != "ww1234" || n.URL != "/screen" || n.Method != "GET" || n.BYOC == "" ||
		n.MachineDetection.Mode != "Enable" || n.MachineDetection.SpeechThreshold != 3*time.Second ||
		n.MachineDetection.SpeechEndThreshold != 900*time.Millisecond || n.MachineDetection.SilenceTimeout != 4*time.Second ||
		strings.Join(n.StatusCallbackEvent, ",") != "completed" {
		t.Fatalf("number %+v", n)
	}
	cf := doc.Verbs[3].(*Dial).Targets[0].(*Conference)
	if cf.Noun() != "Conference" || cf.Name != "Room 1234" || !cf.Muted || cf.Beep != "onEnter" || cf.StartConferenceOnEnter || !cf.EndConferenceOnExit ||
		cf.WaitURL != "/hold" || cf.WaitMethod != "GET" || cf.MaxParticipants != 10 || cf.Record != "record-from-start" || cf.Trim != "do-not-trim" ||
		cf.Coach != "CA0123456789abcdef0123456789abcdef" || cf.StatusCallback != "/conf" || cf.StatusCallbackMethod != "GET" ||
		strings.Join(cf.StatusCallbackEvent, " ") != "start end join leave mute hold speaker" || cf.RecordingStatusCallback != "/crec" ||
		strings.Join(cf.RecordingStatusCallbackEvent, " ") != "completed absent" || cf.ParticipantLabel != "customer" || cf.JitterBufferSize != "small" {
		t.Fatalf("conference %+v", cf)
	}
	if q := doc.Verbs[4].(*Dial).Targets[0].(*Queue); q.Name != "support" || q.URL != "/whisper-agent" || q.Method != "GET" {
		t.Fatalf("queue %+v", q)
	}
	if e := doc.Verbs[5].(*Enqueue); e.QueueName != "support" || e.Action != "/left" || e.Method != "GET" || e.WaitURL != "/wait" ||
		e.WaitURLMethod != "GET" || e.MaxQueueSize != 50 || e.Task != nil {
		t.Fatalf("enqueue %+v", e)
	}
	if e := doc.Verbs[6].(*Enqueue); e.QueueName != "" || e.WorkflowSid == "" || e.Task == nil || e.Task.Attributes != `{"selected_language":"es"}` ||
		e.Task.Priority != 5 || e.Task.Timeout != 200*time.Second {
		t.Fatalf("enqueue with task %+v", e)
	}
	if r := doc.Verbs[8].(*Refer); r.Action != "/referred" || r.Method != "GET" || r.Target == nil || r.Target.URI != "sip:carol@example.test?X-Header=1" {
		t.Fatalf("refer %+v", r)
	}
	if st := doc.Verbs[9].(*Start); st.Action != "/started" || st.Stream.Name != "fork" || st.Stream.URL != "wss://agent.example.test/fork" ||
		st.Stream.Track != "both_tracks" || st.Stream.StatusCallback != "/ss" || st.Stream.StatusCallbackMethod != "POST" {
		t.Fatalf("start %+v %+v", st, st.Stream)
	}
	cn := doc.Verbs[10].(*Connect)
	if cn.Action != "/connected" || cn.Stream.URL != "wss://agent.example.test/media" || cn.Stream.Track != "inbound_track" || cn.Stream.Name != "agent" ||
		len(cn.Stream.Parameters) != 2 || cn.Stream.Parameters[0] != (Parameter{"CustomerId", "42"}) || cn.Stream.StatusCallbackMethod != "GET" {
		t.Fatalf("connect %+v %+v", cn, cn.Stream)
	}
	if sp := doc.Verbs[11].(*Stop); sp.StreamName != "fork" || sp.Line < 40 {
		t.Fatalf("stop %+v", sp)
	}
}

func TestNewDefaults(t *testing.T) {
	doc, err := Parse([]byte(`<Response><Dial><Conference>r</Conference></Dial><Gather input="speech" speechTimeout="3"/><Enqueue>q</Enqueue>` +
		`<Connect><Stream url="ws://127.0.0.1:9/x"/></Connect><Dial><Client>bob</Client></Dial><Say>hi</Say></Response>`))
	if err != nil {
		t.Fatal(err)
	}
	cf := doc.Verbs[0].(*Dial).Targets[0].(*Conference)
	if cf.Muted || cf.Beep != "true" || !cf.StartConferenceOnEnter || cf.EndConferenceOnExit || cf.WaitURL != "" || cf.WaitMethod != "POST" ||
		cf.MaxParticipants != 250 || cf.Record != "do-not-record" || cf.Trim != "trim-silence" || cf.JitterBufferSize != "large" ||
		cf.StatusCallbackEvent != nil || strings.Join(cf.RecordingStatusCallbackEvent, ",") != "completed" {
		t.Fatalf("conference defaults %+v", cf)
	}
	g := doc.Verbs[1].(*Gather)
	if g.WantsDTMF() || !g.WantsSpeech() || g.SpeechTimeout != 3*time.Second || g.SpeechTimeoutAuto || g.Language != "en-US" ||
		!g.ProfanityFilter || !g.BargeIn || g.Enhanced || g.Hints != nil {
		t.Fatalf("gather defaults %+v", g)
	}
	if e := doc.Verbs[2].(*Enqueue); e.Method != "POST" || e.WaitURLMethod != "POST" || e.MaxQueueSize != 0 || e.WaitURL != "" {
		t.Fatalf("enqueue defaults %+v", e)
	}
	if st := doc.Verbs[3].(*Connect).Stream; st.Track != "inbound_track" || st.StatusCallbackMethod != "POST" || st.Parameters != nil {
		t.Fatalf("stream defaults %+v", st)
	}
	d := doc.Verbs[4].(*Dial)
	if d.RingTone != "" || d.RecordingChannels != "" || d.RecordingTrack != "both" || d.Trim != "do-not-trim" || d.Sequential ||
		strings.Join(d.RecordingStatusCallbackEvent, ",") != "completed" {
		t.Fatalf("dial defaults %+v", d)
	}
	if c := d.Targets[0].(*Client); c.Parameters != nil || c.StatusCallbackMethod != "POST" || strings.Join(c.StatusCallbackEvent, ",") != "completed" {
		t.Fatalf("client defaults %+v", c)
	}
	if s := doc.Verbs[5].(*Say); s.Loop != 1 {
		t.Fatalf("say defaults %+v", s)
	}
}

// TestUnknownAttributesIgnored: attributes this server does not model (or
// the hosted platform added later) are ignored on every element, as the
// hosted platform does; only unknown elements are errors.
func TestUnknownAttributesIgnored(t *testing.T) {
	doc, err := Parse([]byte(`<Response future="1"><Say futureVoice="x">a</Say><Dial callReason="r" events="x" future="y">` +
		`<Conference region="us1" eventCallbackUrl="/e">r</Conference></Dial><Enqueue future="1">q</Enqueue><Leave future="1"/>` +
		`<Start><Stream url="wss://a/b" future="1"><Parameter name="n" value="v" future="1"/></Stream></Start>` +
		`<Refer future="1"><Sip future="1">sip:a@b</Sip></Refer><Dial><Queue reservationSid="WR1" postWorkActivitySid="WA1">q</Queue></Dial></Response>`))
	if err != nil || len(doc.Verbs) != 7 {
		t.Fatalf("%v", err)
	}
	// A statusCallbackEvent listed twice is kept once.
	doc, err = Parse([]byte(`<Response><Dial><Client statusCallbackEvent="answered,answered completed">a</Client></Dial></Response>`))
	if err != nil || strings.Join(doc.Verbs[0].(*Dial).Targets[0].(*Client).StatusCallbackEvent, ",") != "answered,completed" {
		t.Fatalf("%v", err)
	}
}
