package mixer

import (
	"encoding/binary"
	"fmt"
	"testing"
)

func pkt(seq uint16, ssrc uint32) []byte {
	p := make([]byte, 12+3)
	p[0], p[1] = 0x80, 0
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	p[12], p[13] = byte(seq>>8), byte(seq) // the payload names its packet
	return p
}

// TestJitter drives a buffer (depth 2, 8 slots) with arrival scripts: "p5"
// puts packet 5, "t" takes one frame; want lists what each take played:
// a sequence number, "c" concealment, "-" nothing.
func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		name, script, want string
		check              func(JitterStats) bool
	}{
		{"in order", "p0 p1 t p2 t p3 t t", "0 1 2 3", func(s JitterStats) bool { return s.Played == 4 }},
		{"waits for depth", "p0 t p1 t t", "- 0 1", nil},
		{"reordered", "p1 p0 t p3 p2 t t t", "0 1 2 3", func(s JitterStats) bool { return s.Late == 0 }},
		{"late dropped", "p0 p1 t t p3 t p2 t", "0 1 c 3", func(s JitterStats) bool { return s.Late == 1 && s.Lost == 1 }},
		{"duplicate", "p0 p1 p1 t t", "0 1", func(s JitterStats) bool { return s.Duplicate == 1 }},
		{"lost concealed", "p0 p1 p3 p4 t t t t t", "0 1 c 3 4", func(s JitterStats) bool { return s.Lost == 1 }},
		{"underrun then delayed packets", "p0 p1 t t t p2 t p3 t t", "0 1 c - 2 3", func(s JitterStats) bool { return s.Underruns == 1 }},
		{"overflow drops the oldest", "p0 p1 p2 p3 p4 p5 p6 p7 p8 p9 t t", "2 3", func(s JitterStats) bool { return s.Overflow == 2 }},
		{"jump starts over", "p0 p1 t p500 p501 t t", "0 500 501", func(s JitterStats) bool { return s.Resets == 1 }},
		{"wraps", "p65534 p65535 t p0 t t", "65534 65535 0", nil},
		{"new ssrc starts over", "p0 p1 t s9 p7 p8 t t", "0 7 8", func(s JitterStats) bool { return s.Resets == 1 }},
		{"other payload types", "x p0 p1 t", "0", func(s JitterStats) bool { return s.Other == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJitter(0, 2, 8)
			ssrc := uint32(1)
			var got []string
			buf := make([]byte, 0, maxPacket)
			for _, step := range splitFields(tc.script) {
				switch step[0] {
				case 'p':
					var seq uint16
					fmt.Sscan(step[1:], &seq)
					j.put(pkt(seq, ssrc))
				case 's':
					fmt.Sscan(step[1:], &ssrc)
				case 'x':
					p := pkt(0, ssrc)
					p[1] = 101
					j.put(p)
				case 't':
					var what int
					buf, what = j.take(buf[:cap(buf)])
					switch what {
					case takePacket:
						got = append(got, fmt.Sprint(uint16(buf[0])<<8|uint16(buf[1])))
					case takeConceal:
						got = append(got, "c")
					default:
						got = append(got, "-")
					}
				}
			}
			if g := joinFields(got); g != tc.want {
				t.Fatalf("played %q, want %q", g, tc.want)
			}
			if s := j.snapshot(); tc.check != nil && !tc.check(s) {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func splitFields(s string) []string {
	var out []string
	cur := ""
	for _, r := range s + " " {
		if r == ' ' {
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
			continue
		}
		cur += string(r)
	}
	return out
}

func joinFields(f []string) string {
	out := ""
	for i, s := range f {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

// FuzzJitter feeds arbitrary packets and takes: the buffer never panics,
// never returns more than a packet's payload, and its count of buffered
// packets matches its slots.
func FuzzJitter(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff}, uint8(3))
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4, 5}, uint8(1))
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 2}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, takes uint8) {
		j := newJitter(0, 2, 8)
		buf := make([]byte, 0, maxPacket)
		for i := 0; i < 4; i++ {
			p := append([]byte(nil), data...)
			if len(p) >= 4 {
				binary.BigEndian.PutUint16(p[2:], binary.BigEndian.Uint16(p[2:])+uint16(i*int(takes)))
			}
			j.put(p)
			for range takes % 4 {
				buf, _ = j.take(buf[:cap(buf)])
				if len(buf) > len(data) {
					t.Fatalf("took %d bytes from a %d-byte packet", len(buf), len(data))
				}
			}
		}
		valid := 0
		for _, s := range j.slots {
			if s.valid {
				valid++
			}
		}
		if valid != j.buffered {
			t.Fatalf("%d valid slots, buffered says %d", valid, j.buffered)
		}
	})
}
