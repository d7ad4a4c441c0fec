package sip

import (
	"context"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/sip/sipauth"
)

// principal is an authenticated user.
type principal = sipauth.Principal

// authenticate checks the request's Authorization against domain (Digest)
// or an access token (Bearer). When it returns false it has responded.
func (s *Server) authenticate(ctx context.Context, req *sip.Request, tx responder, domain string) (principal, bool) {
	return s.auth.Authenticate(ctx, sipauth.RequestOf(req), domain, func(code int, reason string, extra ...sip.Header) {
		s.respond(tx, req, code, reason, extra...)
	})
}

// isOurAddress reports whether host:port (an IP literal) is one of our listeners.
func (s *Server) isOurAddress(host string, port int) bool {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	s.mu.Lock()
	listeners := s.listenAddrs
	s.mu.Unlock()
	for _, l := range listeners {
		lp := int(l.Port())
		if (port == lp || port == 0 && lp == 5060) && (l.Addr().IsUnspecified() || l.Addr() == ip) {
			return true
		}
	}
	return false
}
