package mixer

import (
	"encoding/binary"
	"sync"
)

// jitter is one participant's jitter buffer: packets of its audio payload
// type are stored by sequence number as the socket reader delivers them and
// taken out in order, one per frame, by the mixer's clock. Playout starts
// once depth packets are buffered (depth × 20 ms of delay); a packet older
// than what was already played is dropped as late; a buffer that runs dry
// conceals one frame and then waits for depth packets again (the network's
// jitter grew, or the sender paused: silence suppression, hold); a jump
// beyond the buffer (a sender restarting, a long outage) or a new SSRC
// starts over. It allocates nothing after construction.
type jitter struct {
	mu       sync.Mutex
	pt       uint8 // the audio payload type kept
	depth    int
	slots    []slot // len is a power of two, at least 2·depth
	mask     uint16
	buffered int
	playing  bool   // playout running
	primed   bool   // next is set (a first packet seen)
	started  bool   // a packet was played since the last reset
	next     uint16 // the sequence number to play next
	ssrc     uint32
	stats    JitterStats
}

type slot struct {
	seq   uint16
	valid bool
	data  []byte
}

// JitterStats counts what one participant's jitter buffer did.
type JitterStats struct {
	Packets   uint64 // audio packets stored
	Played    uint64 // packets taken for playout
	Late      uint64 // arrived after their slot was played, dropped
	Duplicate uint64
	Lost      uint64 // missing when their turn came (concealed)
	Underruns uint64 // the buffer ran dry while playing
	Overflow  uint64 // packets dropped because the sender ran ahead of the buffer
	Resets    uint64 // new SSRC or a sequence jump: started over
	Other     uint64 // other payload types (telephone-event, comfort noise) and malformed packets
	Depth     int    // packets buffered now
}

// maxPacket bounds a stored payload (an Opus packet is at most 1275 bytes).
const maxPacket = 1500

func newJitter(pt uint8, depth, capacity int) *jitter {
	size := 4
	for size < max(2*depth, capacity) {
		size *= 2
	}
	j := &jitter{pt: pt, depth: depth, slots: make([]slot, size), mask: uint16(size - 1)}
	for i := range j.slots {
		j.slots[i].data = make([]byte, 0, maxPacket)
	}
	return j
}

// payload returns the RTP packet's payload type, sequence number, SSRC and
// payload, or ok false for a packet that is not RTP version 2.
func payload(p []byte) (pt uint8, seq uint16, ssrc uint32, body []byte, ok bool) {
	if len(p) < 12 || p[0]>>6 != 2 {
		return 0, 0, 0, nil, false
	}
	off := 12 + 4*int(p[0]&0x0F)
	if p[0]&0x10 != 0 { // header extension
		if len(p) < off+4 {
			return 0, 0, 0, nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(p[off+2:]))
	}
	end := len(p)
	if p[0]&0x20 != 0 && end > 0 { // padding
		end -= int(p[end-1])
	}
	if off >= end {
		return 0, 0, 0, nil, false
	}
	return p[1] & 0x7F, binary.BigEndian.Uint16(p[2:4]), binary.BigEndian.Uint32(p[8:12]), p[off:end], true
}

// put stores one received packet (copying it).
func (j *jitter) put(p []byte) {
	pt, seq, ssrc, body, ok := payload(p)
	j.mu.Lock()
	defer j.mu.Unlock()
	if !ok || pt != j.pt || len(body) > maxPacket {
		j.stats.Other++
		return
	}
	if j.primed && ssrc != j.ssrc {
		j.reset()
	}
	if !j.primed {
		j.primed, j.ssrc, j.next = true, ssrc, seq
	}
	d := int16(seq - j.next)
	switch {
	case d < 0 && j.started:
		j.stats.Late++
		return
	case d < 0 && int(-d) < len(j.slots)-j.span():
		j.next = seq // reordered while first priming: start from the earlier packet
	case d < 0:
		j.stats.Late++
		return
	case int(d) >= len(j.slots) && int(d) < 4*len(j.slots):
		// The sender ran ahead of what the buffer holds: drop the oldest so
		// that this packet fits, keeping the delay bounded.
		for int16(seq-j.next) >= int16(len(j.slots)) {
			if s := &j.slots[j.next&j.mask]; s.valid && s.seq == j.next {
				s.valid = false
				j.buffered--
				j.stats.Overflow++
			}
			j.next++
		}
	case int(d) >= len(j.slots):
		j.reset() // a jump: start over with this packet
		j.primed, j.ssrc, j.next = true, ssrc, seq
	}
	s := &j.slots[seq&j.mask]
	if s.valid && s.seq == seq {
		j.stats.Duplicate++
		return
	}
	if s.valid { // an older packet the overflow loop did not reach
		j.buffered--
	}
	s.seq, s.valid = seq, true
	s.data = append(s.data[:0], body...)
	j.buffered++
	j.stats.Packets++
	if !j.playing && j.buffered >= j.depth {
		j.playing = true
	}
}

// span is how far the buffered packets reach beyond next (0 when empty).
func (j *jitter) span() int {
	far := 0
	for i := range j.slots {
		if s := &j.slots[i]; s.valid {
			far = max(far, int(int16(s.seq-j.next))+1)
		}
	}
	return far
}

func (j *jitter) reset() {
	for i := range j.slots {
		j.slots[i].valid = false
	}
	j.buffered, j.playing, j.primed, j.started = 0, false, false, false
	j.stats.Resets++
}

// What take found.
const (
	takeNothing = iota // not playing: silence
	takePacket         // dst holds the payload
	takeConceal        // a packet is missing: conceal one frame
)

// take copies the next packet's payload into dst (which has room for
// maxPacket bytes) and says what the mixer should play.
func (j *jitter) take(dst []byte) ([]byte, int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.playing {
		return dst[:0], takeNothing
	}
	s := &j.slots[j.next&j.mask]
	if s.valid && s.seq == j.next {
		dst = append(dst[:0], s.data...)
		s.valid = false
		j.buffered--
		j.next++
		j.stats.Played++
		j.started = true
		return dst, takePacket
	}
	if j.buffered > 0 { // later packets are here: this one is lost
		j.next++
		j.stats.Lost++
		j.started = true
		return dst[:0], takeConceal
	}
	// Dry: conceal one frame, then stop and wait for depth packets again,
	// holding next so that the packets that were only delayed still play.
	j.playing = false
	j.stats.Underruns++
	return dst[:0], takeConceal
}

func (j *jitter) snapshot() JitterStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.stats
	s.Depth = j.buffered
	return s
}
