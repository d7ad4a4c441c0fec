// Package srtp keys SRTP by SDES (RFC 4568) for SIP legs: it makes and
// chooses a=crypto: lines (media.Crypto) and turns the chosen pair into a
// media.Cipher that an Endpoint uses to protect what it sends and to
// authenticate and decrypt what it receives (pion/srtp underneath).
//
// Suites: AES_CM_128_HMAC_SHA1_80 (the one every SRTP peer has),
// AES_CM_128_HMAC_SHA1_32, and the AES-256 pair of RFC 6188. Replay
// protection keeps a 64-packet window, as libsrtp does.
//
// Answering an offer (the peer's SDP came in):
//
//	offer, err := media.ParseSDPSecure(body)        // RTP/SAVP accepted
//	local, remote, err := srtp.Answer(offer.Crypto) // first suite we have; our fresh key, same tag
//	c, err := srtp.NewCipher(local, remote)
//	ep.SetCipher(c)
//	answer := media.Session{…, Proto: media.ProtoSRTP, Crypto: []media.Crypto{local}}
//
// Offering (Parley calls out):
//
//	offers, err := srtp.Offer()                      // one line per suite, fresh keys
//	sess := media.Session{…, Proto: media.ProtoSRTP, Crypto: offers}
//	…
//	answer, err := media.ParseSDPSecure(body)
//	local, remote, err := srtp.Accept(offers, answer.Crypto)
//	c, err := srtp.NewCipher(local, remote)
//
// Whether a leg must, may or must not use SRTP (srtp: off|optional|required
// per domain or trunk) is the caller's policy; Required and Offered help it
// read the offer. Keys stay in memory only, and media.SecretKey keeps them
// out of logs.
package srtp
