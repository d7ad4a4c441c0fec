// Package udpreg ("UDP registrations") is the SIP front end's stateless
// path for REGISTER over UDP: the fast path of the registrar, which at
// tens of thousands of registrations a second is most of the server's
// work. Everything else sipgo handles as before, and so does every
// REGISTER this path does not read itself.
//
// From datagram to response:
//
//  1. Conn is the UDP socket as sipgo's UDP server reads it. It reads with
//     recvmmsg (batchReader, Linux; one datagram at a time elsewhere),
//     answers a Content-Length larger than the body with 400 (sipgo would
//     drop it), and hands every REGISTER with an RFC 3261 branch to the
//     Stateless path (take) before sipgo sees it.
//  2. take finds the first Via's branch in the raw bytes (rawBranch) and
//     marks (branch, source) as in hand: a copy retransmitted while the
//     first waits is dropped, and a copy of an answered request gets the
//     response bytes kept for Timer J, all before any parsing. The
//     datagrams of one read go to one of a pool of workers as a batch.
//  3. A worker lower-cases the header names in place and reads a plainly
//     written REGISTER straight from the bytes (parseFastRegister, held by
//     FuzzFastRegister to what sipgo's parse gives the registrar);
//     anything else it parses with sipgo and gives to Deps.Serve (the SIP
//     server's request checks, then its registrar).
//  4. The registrar (package registrar, through the Registrar interface)
//     authenticates and applies the request, and answers through the
//     reply function it is given: this package renders the response bytes
//     straight from the request (renderFast, renderResponse; held to
//     sipmsg.Response by FuzzRenderResponse), keeps a final one for Timer J
//     when the request carried credentials, and queues it.
//  5. One sender writes the queued responses with sendmmsg.
//
// The path imports the registrar, not the SIP server: the server passes
// its registrar and its handler for what sipgo parses at construction, so
// there is no import cycle. Interfaces stay off the per-datagram path
// where they would cost an allocation: each worker makes its reply
// function once.
package udpreg
