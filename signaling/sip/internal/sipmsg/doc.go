// Package sipmsg is what Parley adds to sipgo's messages, shared by the SIP
// front end and its parts (authentication, the registrar, the UDP
// REGISTER path): the checks RFC 3261 asks of a UAS that sipgo's parser
// leaves to its users (Validate, and RawContentLengthProblem on a
// datagram's bytes before sipgo sees it; RFC 4475 invalid messages), the
// response to a request as the server sends it (Response), and
// quoted-strings (Quote).
package sipmsg
