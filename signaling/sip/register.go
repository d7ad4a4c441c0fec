package sip

import (
	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/sip/internal/reqctx"
	"github.com/parleyhq/parley/signaling/sip/registrar"
)

// handleRegister hands a REGISTER sipgo parsed (any transport; UDP ones
// that the stateless path does not read itself) to the registrar, which
// answers on tx.
func (s *Server) handleRegister(req *sip.Request, tx responder) {
	transport, flow := requestFlow(req)
	r := registrar.RequestOf(req, transport, flow)
	ctx := reqctx.New()
	defer ctx.Cancel()
	s.reg.Register(ctx, &r, func(code int, reason string, extra ...sip.Header) {
		s.respond(tx, req, code, reason, extra...)
	})
}
