package sip

import (
	"net"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/sip/udpreg"
)

// udpConn wraps the UDP socket for sipgo's UDP server: REGISTERs take the
// stateless path (udpreg), unless Config.UDPRegisterTransactions sends
// them through sipgo's transaction layer like every other request.
func (s *Server) udpConn(pc net.PacketConn) (*udpreg.Conn, error) {
	if !s.cfg.UDPRegisterTransactions {
		st, err := udpreg.New(pc, s.cfg.UserAgent, udpreg.Deps{Registrar: s.reg, Serve: s.serveUDPRegister,
			Logger: s.log, Now: s.now})
		if err != nil {
			return nil, err
		}
		s.udpReg = st
		s.closers = append(s.closers, st.Close)
	}
	return udpreg.NewConn(pc, s.udpReg, s.cfg.UserAgent, s.log), nil
}

// serveUDPRegister handles a REGISTER the stateless path left to sipgo's
// parser as sipgo's handlers do (guard), answering on the path's tx.
func (s *Server) serveUDPRegister(req *sip.Request, tx udpreg.Responder) {
	s.dispatch(s.handleRegister, req, tx)
}
