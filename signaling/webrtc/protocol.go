package webrtc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ProtocolVersion is the version of the JSON protocol this gateway speaks.
// Clients send it in register; frames without "v" are read as version 1.
const ProtocolVersion = 1

// Frame types.
const (
	TypeRegister        = "register"        // c→s {token}
	TypeRegistered      = "registered"      // s→c {identity, expires, incoming, iceServers, session}
	TypeRefresh         = "refresh"         // c→s {token}: a new token before the old expires
	TypeTokenWillExpire = "tokenWillExpire" // s→c {expires}
	TypeInvite          = "invite"          // c→s {ref, to, params, sdp}
	TypeIncoming        = "incoming"        // s→c {callSid, from, to, sdp}
	TypeRinging         = "ringing"         // both ways {callSid[, ref]}
	TypeAnswer          = "answer"          // both ways {callSid, sdp[, ref]}
	TypeCandidate       = "candidate"       // both ways {callSid, candidate}
	TypeHangup          = "hangup"          // both ways {callSid[, ref, code, reason]}
	TypeReject          = "reject"          // c→s {callSid[, code]}
	TypeDTMF            = "dtmf"            // both ways {callSid, digits}
	TypeMessage         = "message"         // both ways {to|from, body}
	TypePing            = "ping"            // c→s
	TypePong            = "pong"            // s→c
	TypeError           = "error"           // s→c {code, message[, ref, callSid]}
)

// Candidate is one trickled ICE candidate, as RTCIceCandidateInit.
type Candidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

// ICEServer is handed to clients in registered (RTCIceServer).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Frame is one protocol message. Fields not used by a type are omitted.
type Frame struct {
	V          int               `json:"v,omitempty"`
	Type       string            `json:"type"`
	Token      string            `json:"token,omitempty"`
	Ref        string            `json:"ref,omitempty"`
	CallSid    string            `json:"callSid,omitempty"`
	From       string            `json:"from,omitempty"`
	To         string            `json:"to,omitempty"`
	Params     map[string]string `json:"params,omitempty"`
	SDP        string            `json:"sdp,omitempty"`
	Candidate  *Candidate        `json:"candidate,omitempty"`
	Digits     string            `json:"digits,omitempty"`
	Body       string            `json:"body,omitempty"`
	Identity   string            `json:"identity,omitempty"`
	Session    string            `json:"session,omitempty"`
	Expires    int64             `json:"expires,omitempty"` // Unix seconds
	Incoming   *bool             `json:"incoming,omitempty"`
	ICEServers []ICEServer       `json:"iceServers,omitempty"`
	Code       string            `json:"code,omitempty"`
	Status     int               `json:"status,omitempty"` // SIP-style status of a hangup or reject
	Message    string            `json:"message,omitempty"`
}

// Error codes of error frames.
const (
	CodeBadFrame       = "bad_frame"
	CodeTooLarge       = "too_large"
	CodeUnsupported    = "unsupported"
	CodeUnauthorized   = "unauthorized"
	CodeAuthTimeout    = "auth_timeout"
	CodeTokenExpired   = "token_expired"
	CodeNotRegistered  = "not_registered"
	CodeNoSuchCall     = "no_such_call"
	CodeCallFailed     = "call_failed"
	CodeForbidden      = "forbidden"
	CodeUnavailable    = "unavailable"
	CodeMessageRefused = "message_refused"
)

// Limits of frame fields.
const (
	maxSDP    = 32 << 10
	maxField  = 1024
	maxParams = 32
	maxDigits = 64
	maxBody   = 16 << 10
)

// ErrFrame wraps every reason a frame is refused.
var ErrFrame = errors.New("bad frame")

// ParseFrame decodes and validates one client frame. It never panics; any
// problem is an error wrapping ErrFrame.
func ParseFrame(data []byte) (Frame, error) {
	var f Frame
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return Frame{}, fmt.Errorf("%w: %w", ErrFrame, err)
	}
	if dec.More() {
		return Frame{}, fmt.Errorf("%w: trailing data after the JSON object", ErrFrame)
	}
	if f.V != 0 && f.V != ProtocolVersion {
		return Frame{}, fmt.Errorf("%w: protocol version %d not supported (want %d)", ErrFrame, f.V, ProtocolVersion)
	}
	for name, v := range map[string]string{"token": f.Token, "ref": f.Ref, "callSid": f.CallSid, "to": f.To, "from": f.From} {
		limit := maxField
		if name == "token" {
			limit = 8 << 10
		}
		if len(v) > limit {
			return Frame{}, fmt.Errorf("%w: %s longer than %d bytes", ErrFrame, name, limit)
		}
	}
	if len(f.SDP) > maxSDP {
		return Frame{}, fmt.Errorf("%w: sdp longer than %d bytes", ErrFrame, maxSDP)
	}
	if len(f.Params) > maxParams {
		return Frame{}, fmt.Errorf("%w: more than %d params", ErrFrame, maxParams)
	}
	for k, v := range f.Params {
		if k == "" || len(k) > 256 || len(v) > maxField {
			return Frame{}, fmt.Errorf("%w: param %.40q too long or empty", ErrFrame, k)
		}
	}
	need := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("%w: %s needs %s", ErrFrame, f.Type, what)
		}
		return nil
	}
	var err error
	switch f.Type {
	case TypeRegister, TypeRefresh:
		err = need(f.Token != "", "token")
	case TypeInvite:
		err = errors.Join(need(f.To != "", "to"), need(f.SDP != "", "sdp"), need(f.Ref != "", "ref"))
	case TypeAnswer:
		err = errors.Join(need(f.CallSid != "", "callSid"), need(f.SDP != "", "sdp"))
	case TypeCandidate:
		err = errors.Join(need(f.CallSid != "" || f.Ref != "", "callSid or ref"), need(f.Candidate != nil, "candidate"))
		if err == nil && len(f.Candidate.Candidate) > maxField {
			err = fmt.Errorf("%w: candidate too long", ErrFrame)
		}
	case TypeRinging, TypeReject:
		err = need(f.CallSid != "", "callSid")
	case TypeHangup:
		err = need(f.CallSid != "" || f.Ref != "", "callSid or ref")
	case TypeDTMF:
		err = errors.Join(need(f.CallSid != "", "callSid"), need(f.Digits != "" && len(f.Digits) <= maxDigits, "1 to 64 digits"))
		for i := 0; err == nil && i < len(f.Digits); i++ {
			if !validDigit(f.Digits[i]) {
				err = fmt.Errorf("%w: %q is not a DTMF digit", ErrFrame, f.Digits[i])
			}
		}
	case TypeMessage:
		err = errors.Join(need(f.To != "", "to"), need(len(f.Body) <= maxBody, "a body of at most 16 KiB"))
	case TypePing:
	case "":
		err = fmt.Errorf("%w: no type", ErrFrame)
	default:
		err = fmt.Errorf("%w: unknown type %.40q", ErrFrame, f.Type)
	}
	if err != nil {
		return Frame{}, err
	}
	return f, nil
}

func validDigit(d byte) bool {
	return d >= '0' && d <= '9' || d == '*' || d == '#' || d >= 'A' && d <= 'D' || d == ','
}
