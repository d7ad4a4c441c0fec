// Package pidf encodes and parses Presence Information Data Format documents
// (RFC 3863, application/pidf+xml) as carried by SIP NOTIFY for the presence
// event package (RFC 3856).
package pidf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ContentType is the media type of PIDF documents.
const ContentType = "application/pidf+xml"

// Namespace is the PIDF XML namespace.
const Namespace = "urn:ietf:params:xml:ns:pidf"

// MaxBytes bounds the documents Parse accepts.
const MaxBytes = 64 << 10

// Basic status values.
const (
	Open   = "open"
	Closed = "closed"
)

// Document is a presence document.
type Document struct {
	Entity string  // the presentity URI
	Tuples []Tuple // at least one for a useful document
	Notes  []string
}

// Tuple is one presence tuple.
type Tuple struct {
	ID      string
	Basic   string // Open or Closed
	Contact string
	Note    string
}

type xmlPresence struct {
	XMLName xml.Name   `xml:"urn:ietf:params:xml:ns:pidf presence"`
	Entity  string     `xml:"entity,attr"`
	Tuples  []xmlTuple `xml:"urn:ietf:params:xml:ns:pidf tuple"`
	Notes   []string   `xml:"urn:ietf:params:xml:ns:pidf note"`
}

type xmlTuple struct {
	ID      string    `xml:"id,attr"`
	Status  xmlStatus `xml:"urn:ietf:params:xml:ns:pidf status"`
	Contact string    `xml:"urn:ietf:params:xml:ns:pidf contact,omitempty"`
	Note    string    `xml:"urn:ietf:params:xml:ns:pidf note,omitempty"`
}

type xmlStatus struct {
	Basic string `xml:"urn:ietf:params:xml:ns:pidf basic,omitempty"`
}

// Errors from Parse and Encode.
var (
	ErrInvalid = errors.New("pidf: invalid document")
)

// Encode renders d as an XML document.
func Encode(d Document) ([]byte, error) {
	if d.Entity == "" {
		return nil, fmt.Errorf("%w: entity is required", ErrInvalid)
	}
	x := xmlPresence{Entity: d.Entity, Notes: d.Notes}
	for _, t := range d.Tuples {
		if t.ID == "" || !validID(t.ID) {
			return nil, fmt.Errorf("%w: tuple id %q", ErrInvalid, t.ID)
		}
		if t.Basic != Open && t.Basic != Closed {
			return nil, fmt.Errorf("%w: basic status %q", ErrInvalid, t.Basic)
		}
		x.Tuples = append(x.Tuples, xmlTuple{ID: t.ID, Status: xmlStatus{Basic: t.Basic}, Contact: t.Contact, Note: t.Note})
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(x); err != nil {
		return nil, fmt.Errorf("pidf encode: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// validID: tuple ids are xs:ID (an NCName); we accept a safe subset.
func validID(s string) bool {
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' ||
			i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.')
		if !ok {
			return false
		}
	}
	return s != ""
}

// Parse reads a PIDF document. It rejects documents that are too large, not
// PIDF, lack an entity, or carry a basic status other than open/closed.
func Parse(b []byte) (Document, error) {
	if len(b) > MaxBytes {
		return Document{}, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxBytes)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	var x xmlPresence
	if err := dec.Decode(&x); err != nil {
		return Document{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// Nothing but whitespace, comments or processing instructions may follow.
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Document{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if strings.TrimSpace(string(t)) != "" {
				return Document{}, fmt.Errorf("%w: trailing data", ErrInvalid)
			}
		case xml.Comment, xml.ProcInst:
		default:
			return Document{}, fmt.Errorf("%w: trailing element", ErrInvalid)
		}
	}
	if strings.TrimSpace(x.Entity) == "" {
		return Document{}, fmt.Errorf("%w: presence has no entity", ErrInvalid)
	}
	d := Document{Entity: x.Entity, Notes: x.Notes}
	for _, t := range x.Tuples {
		if t.ID == "" {
			return Document{}, fmt.Errorf("%w: tuple without id", ErrInvalid)
		}
		basic := strings.TrimSpace(t.Status.Basic)
		if basic != "" && basic != Open && basic != Closed {
			return Document{}, fmt.Errorf("%w: basic status %q", ErrInvalid, basic)
		}
		d.Tuples = append(d.Tuples, Tuple{ID: t.ID, Basic: basic, Contact: strings.TrimSpace(t.Contact), Note: t.Note})
	}
	return d, nil
}
