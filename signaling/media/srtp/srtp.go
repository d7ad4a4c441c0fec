package srtp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pionsrtp "github.com/pion/srtp/v3"

	"github.com/parleyhq/parley/signaling/media"
)

// The SDES crypto suites this package speaks.
const (
	AES128SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
	AES128SHA1_32 = "AES_CM_128_HMAC_SHA1_32"
	AES256SHA1_80 = "AES_256_CM_HMAC_SHA1_80"
	AES256SHA1_32 = "AES_256_CM_HMAC_SHA1_32"
)

// Suites are the suites in the order Parley offers them.
var Suites = []string{AES128SHA1_80, AES128SHA1_32, AES256SHA1_80, AES256SHA1_32}

var profiles = map[string]pionsrtp.ProtectionProfile{
	AES128SHA1_80: pionsrtp.ProtectionProfileAes128CmHmacSha1_80,
	AES128SHA1_32: pionsrtp.ProtectionProfileAes128CmHmacSha1_32,
	AES256SHA1_80: pionsrtp.ProtectionProfileAes256CmHmacSha1_80,
	AES256SHA1_32: pionsrtp.ProtectionProfileAes256CmHmacSha1_32,
}

// ErrNoSuite means no offered crypto line is one this package can use.
var ErrNoSuite = errors.New("srtp: no usable crypto suite offered")

// replayWindow is the number of packets a late one may trail by.
const replayWindow = 64

func profileOf(c media.Crypto) (pionsrtp.ProtectionProfile, error) {
	for name, p := range profiles {
		if strings.EqualFold(name, c.Suite) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("srtp: suite %q is not supported", c.Suite)
}

// usable reports whether c can be keyed as it stands: a known suite, a key of
// the suite's length, and no session parameter (KDR, UNENCRYPTED_SRTP, …:
// RFC 4568 has an answerer refuse a line whose parameters it does not
// implement).
func usable(c media.Crypto) error {
	p, err := profileOf(c)
	if err != nil {
		return err
	}
	keyLen, _ := p.KeyLen()
	saltLen, _ := p.SaltLen()
	if len(c.Key) != keyLen+saltLen {
		return fmt.Errorf("srtp: %s wants a %d-byte key and salt, the line has %d", c.Suite, keyLen+saltLen, len(c.Key))
	}
	if len(c.Params) > 0 {
		return fmt.Errorf("srtp: session parameters %v are not supported", c.Params)
	}
	if c.MKILen > 4 {
		return fmt.Errorf("srtp: an MKI of %d bytes is not supported", c.MKILen)
	}
	return nil
}

// NewKey makes a crypto line with a fresh random key for suite.
func NewKey(tag int, suite string) (media.Crypto, error) {
	c := media.Crypto{Tag: tag, Suite: suite}
	p, err := profileOf(c)
	if err != nil {
		return media.Crypto{}, err
	}
	keyLen, _ := p.KeyLen()
	saltLen, _ := p.SaltLen()
	c.Key = make(media.SecretKey, keyLen+saltLen)
	if _, err := rand.Read(c.Key); err != nil {
		return media.Crypto{}, fmt.Errorf("srtp key: %w", err)
	}
	return c, nil
}

// Offer makes one crypto line per suite, tagged 1, 2, …, for an RTP/SAVP
// offer.
func Offer() ([]media.Crypto, error) {
	out := make([]media.Crypto, 0, len(Suites))
	for i, s := range Suites {
		c, err := NewKey(i+1, s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Answer picks the first offered line this package can use and makes the
// answer's line for it (same tag and suite, a fresh key). local keys what
// Parley sends, remote what the offerer sends.
func Answer(offered []media.Crypto) (local, remote media.Crypto, err error) {
	for _, c := range offered {
		if usable(c) != nil {
			continue
		}
		local, err = NewKey(c.Tag, c.Suite)
		if err != nil {
			return media.Crypto{}, media.Crypto{}, err
		}
		local.Suite = c.Suite
		return local, c, nil
	}
	return media.Crypto{}, media.Crypto{}, ErrNoSuite
}

// Accept matches the answer's line to the offer it answers (by tag and
// suite) and returns the pair to key the cipher with.
func Accept(offered, answered []media.Crypto) (local, remote media.Crypto, err error) {
	if len(answered) != 1 {
		return media.Crypto{}, media.Crypto{}, fmt.Errorf("srtp: the answer has %d crypto lines, want 1", len(answered))
	}
	a := answered[0]
	if err := usable(a); err != nil {
		return media.Crypto{}, media.Crypto{}, err
	}
	for _, o := range offered {
		if o.Tag == a.Tag {
			if !strings.EqualFold(o.Suite, a.Suite) {
				return media.Crypto{}, media.Crypto{}, fmt.Errorf("srtp: the answer's tag %d names %s, the offer's %s", a.Tag, a.Suite, o.Suite)
			}
			return o, a, nil
		}
	}
	return media.Crypto{}, media.Crypto{}, fmt.Errorf("srtp: the answer's tag %d is not in the offer", a.Tag)
}

// Offered reports whether the session carries a crypto line this package
// can use (an RTP/AVP offer with one is best-effort SRTP).
func Offered(s media.Session) bool {
	for _, c := range s.Crypto {
		if usable(c) == nil {
			return true
		}
	}
	return false
}

// Required reports whether the offer demands SRTP (RTP/SAVP).
func Required(s media.Session) bool { return s.Secure() }

// Cipher is an SRTP session: one pion context protects with the local key,
// another unprotects with the remote key. It implements media.Cipher and is
// safe for the endpoint's concurrent readers and writers.
type Cipher struct {
	out    sync.Mutex
	send   *pionsrtp.Context
	sendH  rtp.Header
	sendCH rtcp.Header

	in     sync.Mutex
	recv   *pionsrtp.Context
	recvH  rtp.Header
	recvCH rtcp.Header
}

var _ media.Cipher = (*Cipher)(nil)

// NewCipher keys a cipher: local for what this side sends, remote for what
// it receives. Both must be the same suite.
func NewCipher(local, remote media.Crypto) (*Cipher, error) {
	if !strings.EqualFold(local.Suite, remote.Suite) {
		return nil, fmt.Errorf("srtp: local suite %s, remote %s", local.Suite, remote.Suite)
	}
	send, err := newContext(local)
	if err != nil {
		return nil, fmt.Errorf("srtp local key: %w", err)
	}
	recv, err := newContext(remote, pionsrtp.SRTPReplayProtection(replayWindow), pionsrtp.SRTCPReplayProtection(replayWindow))
	if err != nil {
		return nil, fmt.Errorf("srtp remote key: %w", err)
	}
	return &Cipher{send: send, recv: recv}, nil
}

func newContext(c media.Crypto, opts ...pionsrtp.ContextOption) (*pionsrtp.Context, error) {
	if err := usable(c); err != nil {
		return nil, err
	}
	p, _ := profileOf(c)
	keyLen, _ := p.KeyLen()
	if c.MKILen > 0 {
		mki := make([]byte, c.MKILen)
		for i := range mki {
			mki[len(mki)-1-i] = byte(c.MKI >> (8 * i))
		}
		opts = append(opts, pionsrtp.MasterKeyIndicator(mki))
	}
	ctx, err := pionsrtp.CreateContext(c.Key[:keyLen], c.Key[keyLen:], p, opts...)
	if err != nil {
		return nil, err
	}
	return ctx, nil
}

// ProtectRTP encrypts and authenticates one RTP packet.
func (c *Cipher) ProtectRTP(dst, pkt []byte) ([]byte, error) {
	c.out.Lock()
	defer c.out.Unlock()
	return c.send.EncryptRTP(dst[:cap(dst)], pkt, &c.sendH)
}

// UnprotectRTP authenticates and decrypts one SRTP packet; a replay is an
// error wrapping media.ErrReplayed.
func (c *Cipher) UnprotectRTP(dst, pkt []byte) ([]byte, error) {
	c.in.Lock()
	defer c.in.Unlock()
	out, err := c.recv.DecryptRTP(dst[:cap(dst)], pkt, &c.recvH)
	return out, classify(err)
}

// ProtectRTCP encrypts and authenticates one RTCP packet.
func (c *Cipher) ProtectRTCP(dst, pkt []byte) ([]byte, error) {
	c.out.Lock()
	defer c.out.Unlock()
	return c.send.EncryptRTCP(dst[:cap(dst)], pkt, &c.sendCH)
}

// UnprotectRTCP authenticates and decrypts one SRTCP packet.
func (c *Cipher) UnprotectRTCP(dst, pkt []byte) ([]byte, error) {
	c.in.Lock()
	defer c.in.Unlock()
	out, err := c.recv.DecryptRTCP(dst[:cap(dst)], pkt, &c.recvCH)
	return out, classify(err)
}

func classify(err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "duplicated") { // pion's duplicatedError wraps an unexported sentinel

		return fmt.Errorf("%w: %w", media.ErrReplayed, err)
	}
	return err
}
