package media

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// RTPCodec is one payload type of an audio stream.
type RTPCodec struct {
	PT       uint8
	Name     string // as in rtpmap: PCMU, PCMA, opus, telephone-event
	Rate     int
	Channels int
	Fmtp     string
}

// Is reports whether the codec has the given name (case-insensitive).
func (c RTPCodec) Is(name string) bool { return strings.EqualFold(c.Name, name) }

// Session is the audio part of an SDP body.
type Session struct {
	Addr      netip.Addr
	Port      int
	Codecs    []RTPCodec
	Direction string // sendrecv, sendonly, recvonly, inactive
	PTime     int    // ms, 0 if not given
	// Proto is the transport: "" or ProtoRTP for plain RTP/AVP, ProtoSRTP
	// (RTP/SAVP) for SRTP keyed by Crypto. Only ParseSDPSecure returns
	// ProtoSRTP.
	Proto string
	// Crypto holds the a=crypto: lines (RFC 4568 SDES) of the stream, in
	// order; an RTP/AVP stream may carry them too (best-effort SRTP).
	// media/srtp picks from them and makes the keys.
	Crypto []Crypto
}

// The audio transports ParseSDPSecure accepts and Marshal writes.
const (
	ProtoRTP  = "RTP/AVP"
	ProtoSRTP = "RTP/SAVP"
)

// Secure reports whether the session is SRTP (RTP/SAVP).
func (s Session) Secure() bool { return s.Proto == ProtoSRTP }

// RTP returns the address to send RTP to.
func (s Session) RTP() netip.AddrPort { return netip.AddrPortFrom(s.Addr, uint16(s.Port)) }

var staticCodecs = map[uint8]RTPCodec{
	0: {PT: 0, Name: "PCMU", Rate: 8000, Channels: 1},
	8: {PT: 8, Name: "PCMA", Rate: 8000, Channels: 1},
}

// ErrNoAudio means the SDP has no usable audio stream.
var ErrNoAudio = errors.New("sdp: no audio stream")

// MaxSDPBytes bounds the bodies ParseSDP reads.
const MaxSDPBytes = 16 << 10

// ParseSDP reads the first active audio stream of a plain-RTP (RTP/AVP) SDP;
// any other transport, RTP/SAVP included, is an error.
func ParseSDP(body []byte) (Session, error) { return parseSDP(body, false) }

// ParseSDPSecure is ParseSDP that also accepts an RTP/SAVP (SDES-keyed
// SRTP) audio stream: Session.Proto says which transport was offered and
// Session.Crypto carries the offered keys. A crypto line that does not parse
// is left out (RFC 4568 §7.1.1: the answerer ignores what it cannot use).
func ParseSDPSecure(body []byte) (Session, error) { return parseSDP(body, true) }

func parseSDP(body []byte, allowSRTP bool) (Session, error) {
	if len(body) > MaxSDPBytes {
		return Session{}, fmt.Errorf("sdp: larger than %d bytes", MaxSDPBytes)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(string(body)); err != nil {
		return Session{}, fmt.Errorf("sdp: %w", err)
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		proto := strings.Join(m.MediaName.Protos, "/")
		switch {
		case proto == ProtoRTP:
		case proto == ProtoSRTP && allowSRTP:
		case allowSRTP:
			return Session{}, fmt.Errorf("sdp: audio transport %s is not supported here (want RTP/AVP or RTP/SAVP)", proto)
		default:
			return Session{}, fmt.Errorf("sdp: audio transport %s is not supported here (want RTP/AVP)", proto)
		}
		s := Session{Port: m.MediaName.Port.Value, Direction: "sendrecv"}
		if allowSRTP {
			s.Proto = proto
		}
		conn := m.ConnectionInformation
		if conn == nil {
			conn = d.ConnectionInformation
		}
		if conn == nil || conn.Address == nil {
			return Session{}, errors.New("sdp: no connection address (c=)")
		}
		host, _, _ := strings.Cut(conn.Address.Address, "/")
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return Session{}, fmt.Errorf("sdp: connection address %q: %w", conn.Address.Address, err)
		}
		s.Addr = addr.Unmap()
		rtpmaps, fmtps := map[uint8]RTPCodec{}, map[uint8]string{}
		for _, a := range m.Attributes {
			switch a.Key {
			case "rtpmap":
				if c, ok := parseRTPMap(a.Value); ok {
					rtpmaps[c.PT] = c
				}
			case "fmtp":
				pt, rest, ok := strings.Cut(a.Value, " ")
				if n, err := strconv.Atoi(pt); ok && err == nil && n >= 0 && n < 128 {
					fmtps[uint8(n)] = strings.TrimSpace(rest)
				}
			case "sendrecv", "sendonly", "recvonly", "inactive":
				s.Direction = a.Key
			case "ptime":
				if n, err := strconv.Atoi(strings.TrimSpace(a.Value)); err == nil && n > 0 && n <= 200 {
					s.PTime = n
				}
			case "crypto":
				if c, err := ParseCrypto(a.Value); err == nil && len(s.Crypto) < maxCryptoLines {
					s.Crypto = append(s.Crypto, c)
				}
			}
		}
		for _, f := range m.MediaName.Formats {
			n, err := strconv.Atoi(f)
			if err != nil || n < 0 || n > 127 {
				return Session{}, fmt.Errorf("sdp: payload type %q", f)
			}
			pt := uint8(n)
			c, ok := rtpmaps[pt]
			if !ok {
				if c, ok = staticCodecs[pt]; !ok {
					continue // a static type we do not know, without rtpmap
				}
			}
			c.Fmtp = fmtps[pt]
			s.Codecs = append(s.Codecs, c)
		}
		return s, nil
	}
	return Session{}, ErrNoAudio
}

func parseRTPMap(v string) (RTPCodec, bool) {
	pt, enc, ok := strings.Cut(v, " ")
	n, err := strconv.Atoi(pt)
	if !ok || err != nil || n < 0 || n > 127 {
		return RTPCodec{}, false
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	c := RTPCodec{PT: uint8(n), Name: parts[0], Channels: 1}
	if len(parts) > 1 {
		c.Rate, _ = strconv.Atoi(parts[1])
	}
	if len(parts) > 2 {
		c.Channels, _ = strconv.Atoi(parts[2])
	}
	return c, c.Name != "" && c.Rate > 0
}

// Negotiate keeps the offered codecs whose names are in allow, in the
// offerer's order and with its payload types, so that the answer's first
// codec is the offerer's preference and media can pass through unchanged.
func Negotiate(offer []RTPCodec, allow ...string) []RTPCodec {
	var out []RTPCodec
	for _, c := range offer {
		for _, name := range allow {
			if c.Is(name) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// First returns the first codec that is not telephone-event, and its PT of
// telephone-event (0 when absent).
func (s Session) First() (audio RTPCodec, eventPT uint8, ok bool) {
	for _, c := range s.Codecs {
		if c.Is("telephone-event") {
			if eventPT == 0 {
				eventPT = c.PT
			}
			continue
		}
		if !ok {
			audio, ok = c, true
		}
	}
	return audio, eventPT, ok
}

// Marshal writes the session as an SDP body with the given origin ids.
func (s Session) Marshal(sessionID, version uint64) []byte {
	ip := "IP4"
	if s.Addr.Is6() {
		ip = "IP6"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=parley %d %d IN %s %s\r\ns=parley\r\nc=IN %s %s\r\nt=0 0\r\n", sessionID, version, ip, s.Addr, ip, s.Addr)
	proto := s.Proto
	if proto == "" {
		proto = ProtoRTP
	}
	fmt.Fprintf(&b, "m=audio %d %s", s.Port, proto)
	for _, c := range s.Codecs {
		fmt.Fprintf(&b, " %d", c.PT)
	}
	b.WriteString("\r\n")
	for _, c := range s.Codecs {
		if c.Channels > 1 {
			fmt.Fprintf(&b, "a=rtpmap:%d %s/%d/%d\r\n", c.PT, c.Name, c.Rate, c.Channels)
		} else {
			fmt.Fprintf(&b, "a=rtpmap:%d %s/%d\r\n", c.PT, c.Name, c.Rate)
		}
		if c.Fmtp != "" {
			fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", c.PT, c.Fmtp)
		}
	}
	if s.PTime > 0 {
		fmt.Fprintf(&b, "a=ptime:%d\r\n", s.PTime)
	}
	for _, c := range s.Crypto {
		fmt.Fprintf(&b, "a=crypto:%s\r\n", c.String())
	}
	dir := s.Direction
	if dir == "" {
		dir = "sendrecv"
	}
	fmt.Fprintf(&b, "a=%s\r\n", dir)
	return []byte(b.String())
}

// PTMapFor maps the payload types of from's codecs to those to uses for the
// same codec names and rates, for Bridge.
func PTMapFor(from, to []RTPCodec) PTMap {
	m := PTMap{}
	for _, f := range from {
		for _, t := range to {
			if f.Is(t.Name) && f.Rate == t.Rate && f.PT != t.PT {
				m[f.PT] = t.PT
				break
			}
		}
	}
	return m
}
