package calls

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/parleyhq/parley/signaling/media"
)

var loopback = netip.MustParseAddr("127.0.0.1")

var pcmuWithEvents = []media.RTPCodec{
	{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1},
	{PT: 101, Name: "telephone-event", Rate: 8000, Channels: 1, Fmtp: "0-15"},
}

// rtpLeg is a Leg whose signalling is in-process but whose media is real RTP
// on loopback: Parley's endpoint on one side and a "phone" endpoint, with its
// own sender and capture, on the other.
type rtpLeg struct {
	t            *testing.T
	ep, phone    *media.Endpoint
	PhoneSender  *media.Sender
	PhoneCapture *media.Capture
	info         chan byte

	mu       sync.Mutex
	answered bool
	rejected int
	ringing  int
	hungUp   bool // Parley hung up
	done     chan struct{}
	once     sync.Once
}

func newRTPLeg(t *testing.T, ports *media.PortRange) *rtpLeg {
	t.Helper()
	ep, err := ports.Listen(loopback)
	if err != nil {
		t.Fatal(err)
	}
	phone, err := ports.Listen(loopback)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close(); phone.Close() })
	l := &rtpLeg{t: t, ep: ep, phone: phone, info: make(chan byte, 8), done: make(chan struct{})}
	phone.SetRemote(ep.Local())
	l.PhoneSender = media.NewSender(phone, media.PCMU, 101)
	l.PhoneCapture = media.NewCapture(101)
	phone.SetSink(l.PhoneCapture.Sink)
	return l
}

func (l *rtpLeg) Offer() []media.RTPCodec { return pcmuWithEvents }

func (l *rtpLeg) Answer(ctx context.Context, prefer []media.RTPCodec) (LegMedia, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answered = true
	l.ep.SetRemote(l.phone.Local())
	return LegMedia{Endpoint: l.ep, Codec: media.PCMU, EventPT: 101, Codecs: pcmuWithEvents}, nil
}

func (l *rtpLeg) Ringing(ctx context.Context) error {
	l.mu.Lock()
	l.ringing++
	l.mu.Unlock()
	return nil
}

func (l *rtpLeg) Reject(ctx context.Context, status int, reason string) error {
	l.mu.Lock()
	l.rejected = status
	l.mu.Unlock()
	l.end()
	return nil
}

func (l *rtpLeg) Hangup(ctx context.Context) error {
	l.mu.Lock()
	l.hungUp = true
	l.mu.Unlock()
	l.end()
	return nil
}

func (l *rtpLeg) end()                  { l.once.Do(func() { close(l.done) }) }
func (l *rtpLeg) Done() <-chan struct{} { return l.done }
func (l *rtpLeg) Digits() <-chan byte   { return l.info }

// PhoneHangsUp is the far end hanging up.
func (l *rtpLeg) PhoneHangsUp() { l.end() }

func (l *rtpLeg) state() (answered bool, rejected int, hungUp bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answered, l.rejected, l.hungUp
}

// media returns the answered leg's media, for a Dialer.
func (l *rtpLeg) media() LegMedia {
	l.ep.SetRemote(l.phone.Local())
	return LegMedia{Endpoint: l.ep, Codec: media.PCMU, EventPT: 101, Codecs: pcmuWithEvents}
}
