package mixer

import (
	"fmt"

	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/media/codec"
	"github.com/parleyhq/parley/signaling/media/playback"
)

// Source supplies audio the mixer plays that no participant speaks: hold
// music, announcements. The mixer calls Read once per frame from its clock's
// goroutine, with pcm one frame long at the mixer's rate; Read fills it and
// reports whether it had audio (false: pcm is ignored). Read must not block
// or allocate.
type Source interface {
	Read(pcm []int16) bool
}

// Loop is a Source that plays PCM at the mixer's rate over and over (hold
// music, a hold tone).
type Loop struct {
	pcm []int16
	pos int
}

// NewLoop loops pcm (not copied; it must not change while playing).
func NewLoop(pcm []int16) *Loop { return &Loop{pcm: pcm} }

// Read fills pcm from the loop.
func (l *Loop) Read(pcm []int16) bool {
	if len(l.pcm) == 0 {
		return false
	}
	for i := range pcm {
		pcm[i] = l.pcm[l.pos]
		if l.pos++; l.pos == len(l.pcm) {
			l.pos = 0
		}
	}
	return true
}

// QueueSource plays a playback.Queue (8 kHz µ-law pushed by an application,
// with its marks and clears) into the mixer: announcements to the whole
// conference or to one participant. The mixer's clock drives the queue
// (Queue.Next); do not also Run it.
type QueueSource struct {
	q     *playback.Queue
	up    *codec.Resampler // 8 kHz → the mixer's rate; nil at 8 kHz
	frame [playback.FrameBytes]byte
	pcm   []int16 // the frame at 8 kHz
	out   []int16 // resampled
}

// NewQueueSource adapts q to a mixer working at rate.
func NewQueueSource(q *playback.Queue, rate int) (*QueueSource, error) {
	s := &QueueSource{q: q, pcm: make([]int16, 0, playback.FrameBytes), out: make([]int16, 0, codec.MaxFrameSamples)}
	if rate != media.SampleRate {
		r, err := codec.NewResampler(media.SampleRate, rate)
		if err != nil {
			return nil, fmt.Errorf("queue source: %w", err)
		}
		s.up = r
	}
	return s, nil
}

// Read takes the queue's next frame.
func (s *QueueSource) Read(pcm []int16) bool {
	if !s.q.Next(&s.frame) {
		if s.up != nil {
			s.up.Reset()
		}
		return false
	}
	s.pcm = media.PCMU.Decode(s.pcm[:0], s.frame[:])
	if s.up != nil {
		s.out = s.up.Process(s.out[:0], s.pcm)
		n := copy(pcm, s.out)
		clear(pcm[n:])
		return true
	}
	copy(pcm, s.pcm)
	return true
}
