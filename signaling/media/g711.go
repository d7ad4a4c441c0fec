package media

// G.711 µ-law and A-law, after the ITU-T reference algorithm: 14-bit (µ-law)
// or 13-bit (A-law) linear magnitudes, eight segments, four mantissa bits.

var (
	ulawSegEnd = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
	alawSegEnd = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
)

func segment(v int, ends *[8]int) int {
	for i, e := range ends {
		if v <= e {
			return i
		}
	}
	return 8
}

// ULawEncode converts one linear 16-bit sample to µ-law.
func ULawEncode(s int16) byte {
	v := int(s) >> 2
	mask := 0xFF
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	if v > 8159 {
		v = 8159
	}
	v += 0x84 >> 2
	seg := segment(v, &ulawSegEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	return byte(((seg << 4) | ((v >> (seg + 1)) & 0xF)) ^ mask)
}

// ULawDecode converts one µ-law byte to a linear 16-bit sample.
func ULawDecode(u byte) int16 {
	u = ^u
	t := (int(u&0x0F) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// ALawEncode converts one linear 16-bit sample to A-law.
func ALawEncode(s int16) byte {
	v := int(s) >> 3
	mask := 0xD5
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	seg := segment(v, &alawSegEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	a := seg << 4
	if seg < 2 {
		a |= (v >> 1) & 0x0F
	} else {
		a |= (v >> seg) & 0x0F
	}
	return byte(a ^ mask)
}

// ALawDecode converts one A-law byte to a linear 16-bit sample.
func ALawDecode(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0F) << 4
	switch seg := (a & 0x70) >> 4; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// Codec names a G.711 law.
type Codec int

// The G.711 laws.
const (
	PCMU Codec = iota // µ-law, RTP payload type 0
	PCMA              // A-law, RTP payload type 8
)

// Encode converts linear samples to G.711 bytes.
func (c Codec) Encode(dst []byte, src []int16) []byte {
	for _, s := range src {
		if c == PCMA {
			dst = append(dst, ALawEncode(s))
		} else {
			dst = append(dst, ULawEncode(s))
		}
	}
	return dst
}

// Decode converts G.711 bytes to linear samples.
func (c Codec) Decode(dst []int16, src []byte) []int16 {
	for _, b := range src {
		if c == PCMA {
			dst = append(dst, ALawDecode(b))
		} else {
			dst = append(dst, ULawDecode(b))
		}
	}
	return dst
}

// PayloadType is the static RTP payload type of the law.
func (c Codec) PayloadType() uint8 {
	if c == PCMA {
		return 8
	}
	return 0
}
