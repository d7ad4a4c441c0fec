package media

import (
	"testing"

	"github.com/pion/rtp"
)

func TestCaptureSequenceAndSSRC(t *testing.T) {
	pkt := func(ssrc uint32, seq uint16) []byte {
		b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc},
			Payload: make([]byte, 160)}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		feed []struct {
			ssrc uint32
			seq  uint16
		}
		want int // chunks delivered
	}{
		{"in order", []struct {
			ssrc uint32
			seq  uint16
		}{{1, 10}, {1, 11}, {1, 12}}, 3},
		{"late and duplicate dropped", []struct {
			ssrc uint32
			seq  uint16
		}{{1, 10}, {1, 12}, {1, 11}, {1, 12}}, 3},
		{"wraps", []struct {
			ssrc uint32
			seq  uint16
		}{{1, 65534}, {1, 65535}, {1, 0}, {1, 1}}, 4},
		// Parley's own ringback (seq 5000) then the bridged party's stream,
		// numbered lower: a new SSRC is a new stream, not late packets.
		{"new SSRC starts anywhere", []struct {
			ssrc uint32
			seq  uint16
		}{{1, 5000}, {1, 5001}, {2, 100}, {2, 101}, {2, 99}}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCapture(101)
			for _, f := range tc.feed {
				c.Sink(pkt(f.ssrc, f.seq))
			}
			if got := len(c.Samples); got != tc.want {
				t.Fatalf("%d chunks delivered, want %d", got, tc.want)
			}
		})
	}
}
