package pidf

import (
	"errors"
	"strings"
	"testing"
)

func TestEncodeParseRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		doc  Document
	}{
		{"open", Document{Entity: "sip:alice@example.com", Tuples: []Tuple{{ID: "t1", Basic: Open, Note: "available"}}}},
		{"closed with contact", Document{Entity: "sip:bob@example.com", Tuples: []Tuple{{ID: "a-1", Basic: Closed, Contact: "sip:bob@192.0.2.1"}}, Notes: []string{"offline"}}},
		{"escaped note", Document{Entity: "sip:c@example.com", Tuples: []Tuple{{ID: "x", Basic: Open, Note: `<busy> & "on a call"`}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), `xmlns="urn:ietf:params:xml:ns:pidf"`) {
				t.Fatalf("namespace missing:\n%s", b)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, b)
			}
			if got.Entity != tt.doc.Entity || len(got.Tuples) != len(tt.doc.Tuples) {
				t.Fatalf("got %+v, want %+v", got, tt.doc)
			}
			for i := range got.Tuples {
				if got.Tuples[i] != tt.doc.Tuples[i] {
					t.Fatalf("tuple %d: got %+v want %+v", i, got.Tuples[i], tt.doc.Tuples[i])
				}
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	for name, d := range map[string]Document{
		"no entity": {Tuples: []Tuple{{ID: "a", Basic: Open}}},
		"bad basic": {Entity: "sip:a@b", Tuples: []Tuple{{ID: "a", Basic: "busy"}}},
		"bad id":    {Entity: "sip:a@b", Tuples: []Tuple{{ID: "1a", Basic: Open}}},
	} {
		if _, err := Encode(d); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		"not xml":     "hello",
		"wrong ns":    `<presence xmlns="urn:x" entity="sip:a@b"/>`,
		"no entity":   `<presence xmlns="urn:ietf:params:xml:ns:pidf"/>`,
		"bad basic":   `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="t"><status><basic>maybe</basic></status></tuple></presence>`,
		"tuple no id": `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple><status><basic>open</basic></status></tuple></presence>`,
		"trailing":    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/><x/>`,
		"unclosed":    `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">`,
		"too large":   `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>` + strings.Repeat("a", MaxBytes) + `</note></presence>`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestParseForeignDocument(t *testing.T) {
	// A PIDF document as sent by other user agents, with extension namespaces.
	in := `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:carol@example.com">
  <tuple id="sg89ae">
    <status><basic>open</basic></status>
    <contact priority="0.8">sip:carol@192.0.2.7</contact>
  </tuple>
  <dm:person id="p1"/>
  <note xml:lang="en">Ready</note>
</presence>`
	d, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if d.Entity != "sip:carol@example.com" || len(d.Tuples) != 1 || d.Tuples[0].Basic != Open || d.Tuples[0].Contact != "sip:carol@192.0.2.7" || len(d.Notes) != 1 {
		t.Fatalf("got %+v", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="t"><status><basic>open</basic></status></tuple></presence>`))
	f.Add([]byte(`<presence/>`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		// Anything Parse accepts with valid tuples must survive a round trip.
		ok := true
		for _, tu := range d.Tuples {
			if !validID(tu.ID) || (tu.Basic != Open && tu.Basic != Closed) {
				ok = false
			}
		}
		if !ok {
			return
		}
		out, err := Encode(d)
		if err != nil {
			t.Fatalf("encode of parsed %+v: %v", d, err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("reparse: %v\n%s", err, out)
		}
	})
}
