package codec

import "github.com/parleyhq/parley/signaling/media"

// The G.711 laws by table: 256 entries to decode, 16 Ki (the 14 significant
// bits of a sample) to encode. Built once from media's reference routines.
var (
	ulawToLinear, alawToLinear = decodeTables()
	linearToULaw, linearToALaw = encodeTables()
)

func decodeTables() (u, a [256]int16) {
	for i := range 256 {
		u[i] = media.ULawDecode(byte(i))
		a[i] = media.ALawDecode(byte(i))
	}
	return u, a
}

func encodeTables() (u, a *[1 << 14]byte) {
	u, a = new([1 << 14]byte), new([1 << 14]byte)
	for i := range 1 << 14 {
		s := int16(uint16(i) << 2) // the top 14 bits; both laws ignore the lowest two
		u[i] = media.ULawEncode(s)
		a[i] = media.ALawEncode(s)
	}
	return u, a
}

type g711Decoder struct {
	table *[256]int16
	rate  int
	up    *Resampler // 8 kHz → rate, nil at 8 kHz
	pcm   []int16
}

func newG711Decoder(law media.Codec, rate int) (*g711Decoder, error) {
	d := &g711Decoder{table: &ulawToLinear, rate: rate}
	if law == media.PCMA {
		d.table = &alawToLinear
	}
	if rate != 8000 {
		r, err := NewResampler(8000, rate)
		if err != nil {
			return nil, err
		}
		d.up, d.pcm = r, make([]int16, 0, MaxFrameSamples)
	}
	return d, nil
}

func (d *g711Decoder) Rate() int { return d.rate }

func (d *g711Decoder) Decode(dst []int16, payload []byte) ([]int16, error) {
	if d.up == nil {
		return decodeLaw(dst, payload, d.table), nil
	}
	if len(payload) > cap(d.pcm) {
		payload = payload[:cap(d.pcm)]
	}
	d.pcm = decodeLaw(d.pcm[:0], payload, d.table)
	return d.up.Process(dst, d.pcm), nil
}

func decodeLaw(dst []int16, payload []byte, t *[256]int16) []int16 {
	n := len(dst)
	dst = grow(dst, len(payload))
	out := dst[n : n+len(payload)]
	for i, b := range payload {
		out[i] = t[b]
	}
	return dst
}

func (d *g711Decoder) Conceal(dst []int16) []int16 {
	n := FrameSamples(d.rate)
	dst = grow(dst, n)
	clear(dst[len(dst)-n:])
	if d.up != nil {
		d.up.Reset()
	}
	return dst
}

type g711Encoder struct {
	table *[1 << 14]byte
	rate  int
	down  *Resampler // rate → 8 kHz, nil at 8 kHz
	pcm   []int16
}

func newG711Encoder(law media.Codec, rate int) (*g711Encoder, error) {
	e := &g711Encoder{table: linearToULaw, rate: rate}
	if law == media.PCMA {
		e.table = linearToALaw
	}
	if rate != 8000 {
		r, err := NewResampler(rate, 8000)
		if err != nil {
			return nil, err
		}
		e.down, e.pcm = r, make([]int16, 0, MaxFrameSamples)
	}
	return e, nil
}

func (e *g711Encoder) Rate() int             { return e.rate }
func (e *g711Encoder) TimestampStep() uint32 { return 160 }

func (e *g711Encoder) Encode(dst []byte, pcm []int16) ([]byte, error) {
	if e.down != nil {
		e.pcm = e.down.Process(e.pcm[:0], pcm)
		pcm = e.pcm
	}
	n := len(dst)
	dst = growBytes(dst, len(pcm))
	out := dst[n : n+len(pcm)]
	for i, s := range pcm {
		out[i] = e.table[uint16(s)>>2]
	}
	return dst, nil
}

// grow extends dst by n samples, reallocating only when it lacks room.
func grow(dst []int16, n int) []int16 {
	if cap(dst)-len(dst) < n {
		bigger := make([]int16, len(dst), 2*cap(dst)+n)
		copy(bigger, dst)
		dst = bigger
	}
	return dst[:len(dst)+n]
}

func growBytes(dst []byte, n int) []byte {
	if cap(dst)-len(dst) < n {
		bigger := make([]byte, len(dst), 2*cap(dst)+n)
		copy(bigger, dst)
		dst = bigger
	}
	return dst[:len(dst)+n]
}
