package registrar

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/sip/sipauth"
)

// Request is what the registrar reads of a REGISTER: from sipgo's parse
// (RequestOf), or straight from a datagram's bytes (the UDP path's fast
// parser, udpreg). FuzzFastRegister holds the two readings to the same
// Request.
type Request struct {
	Auth           sipauth.Request
	ToUser, ToHost string
	Expires        int // the Expires header; -1 when there is none
	Contacts       []Contact
	BadContact     bool // a Contact header sipgo could not read as one
	CallID         string
	CSeq           uint32
	UserAgent      string
	Transport      string // lower case
	Flow           string // reliable transports: the connection
}

// Contact is one Contact of a REGISTER.
type Contact struct {
	URI      string // as sipgo writes it
	Wildcard bool
	Params   sip.HeaderParams
}

// RequestOf reads a REGISTER sipgo parsed (and the server validated) that
// came over transport (lower case) on flow (reliable transports).
func RequestOf(req *sip.Request, transport, flow string) Request {
	r := Request{Auth: sipauth.RequestOf(req), Expires: -1, CallID: string(*req.CallID()), CSeq: req.CSeq().SeqNo,
		Transport: transport, Flow: flow}
	to := req.To()
	r.ToUser, r.ToHost = to.Address.User, to.Address.Host
	if h := req.GetHeader("expires"); h != nil {
		v, _ := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32) // validated
		r.Expires = int(min(v, 1<<31))
	}
	for _, h := range req.GetHeaders("contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			r.BadContact = true
			continue
		}
		r.Contacts = append(r.Contacts, Contact{URI: c.Address.String(), Wildcard: c.Address.Wildcard, Params: c.Params})
	}
	if h := req.GetHeader("user-agent"); h != nil {
		r.UserAgent = h.Value()
	}
	return r
}
