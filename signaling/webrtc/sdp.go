package webrtc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/signaling/media"
)

// audioCodecs reads the first audio section of a WebRTC SDP (any
// profile, UDP/TLS/RTP/SAVPF included) in its order of preference.
func audioCodecs(body string) ([]media.RTPCodec, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(body); err != nil {
		return nil, fmt.Errorf("sdp: %w", err)
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		rtpmaps, fmtps := map[uint8]media.RTPCodec{}, map[uint8]string{}
		for _, a := range m.Attributes {
			switch a.Key {
			case "rtpmap":
				pt, enc, ok := strings.Cut(a.Value, " ")
				n, err := strconv.Atoi(pt)
				if !ok || err != nil || n < 0 || n > 127 {
					continue
				}
				parts := strings.Split(strings.TrimSpace(enc), "/")
				c := media.RTPCodec{PT: uint8(n), Name: parts[0], Channels: 1}
				if len(parts) > 1 {
					c.Rate, _ = strconv.Atoi(parts[1])
				}
				if len(parts) > 2 {
					c.Channels, _ = strconv.Atoi(parts[2])
				}
				rtpmaps[c.PT] = c
			case "fmtp":
				pt, rest, ok := strings.Cut(a.Value, " ")
				if n, err := strconv.Atoi(pt); ok && err == nil && n >= 0 && n < 128 {
					fmtps[uint8(n)] = strings.TrimSpace(rest)
				}
			}
		}
		var out []media.RTPCodec
		for _, f := range m.MediaName.Formats {
			n, err := strconv.Atoi(f)
			if err != nil || n < 0 || n > 127 {
				continue
			}
			c, ok := rtpmaps[uint8(n)]
			if !ok {
				switch n {
				case 0:
					c = media.RTPCodec{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}
				case 8:
					c = media.RTPCodec{PT: 8, Name: "PCMA", Rate: 8000, Channels: 1}
				default:
					continue
				}
			}
			c.Fmtp = fmtps[c.PT]
			out = append(out, c)
		}
		return out, nil
	}
	return nil, media.ErrNoAudio
}

// bridgeable keeps the codecs that pass through to SIP unchanged: PCMU,
// PCMA, Opus at 48 kHz and telephone-event (at the rate of an audio codec kept).
func bridgeable(codecs []media.RTPCodec) []media.RTPCodec {
	var out []media.RTPCodec
	rates := map[int]bool{}
	for _, c := range codecs {
		switch {
		case (c.Is("PCMU") || c.Is("PCMA")) && c.Rate == 8000, c.Is("opus") && c.Rate == 48000:
			out = append(out, c)
			rates[c.Rate] = true
		}
	}
	for _, c := range codecs {
		if c.Is("telephone-event") && rates[c.Rate] {
			out = append(out, c)
		}
	}
	return out
}

// choose picks the browser leg's codecs: the first of prefer's names that
// offer has (pass-through to the other party), else its first G.711 law,
// else its first codec; plus telephone-event at that codec's rate.
func choose(offer, prefer []media.RTPCodec) ([]media.RTPCodec, error) {
	var names []string
	for _, p := range prefer {
		if !p.Is("telephone-event") {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		names = []string{"PCMU", "PCMA", "opus"}
	}
	var audio *media.RTPCodec
	for _, name := range names {
		for i := range offer {
			if audio == nil && offer[i].Is(name) {
				audio = &offer[i]
			}
		}
	}
	if audio == nil {
		return nil, errors.New("no codec in common with the other party")
	}
	out := []media.RTPCodec{*audio}
	for _, c := range offer {
		if c.Is("telephone-event") && c.Rate == audio.Rate {
			out = append(out, c)
			break
		}
	}
	return out, nil
}

// codecParams is the pion registration of a codec.
func codecParams(c media.RTPCodec) pion.RTPCodecParameters {
	mime := "audio/" + c.Name
	switch {
	case c.Is("PCMU"):
		mime = pion.MimeTypePCMU
	case c.Is("PCMA"):
		mime = pion.MimeTypePCMA
	case c.Is("opus"):
		mime = pion.MimeTypeOpus
	case c.Is("telephone-event"):
		mime = "audio/telephone-event"
	}
	ch := c.Channels
	if c.Is("opus") {
		ch = 2
	}
	if ch < 1 {
		ch = 1
	}
	return pion.RTPCodecParameters{
		RTPCodecCapability: pion.RTPCodecCapability{MimeType: mime, ClockRate: uint32(c.Rate), Channels: uint16(ch), SDPFmtpLine: c.Fmtp},
		PayloadType:        pion.PayloadType(c.PT),
	}
}

// legMedia describes an answered browser leg's endpoint to the engine.
func legMediaOf(ep *media.Endpoint, codecs []media.RTPCodec) (codec media.Codec, eventPT uint8) {
	audio, ev, _ := media.Session{Codecs: codecs}.First()
	codec = media.PCMU
	if audio.Is("PCMA") {
		codec = media.PCMA
	}
	return codec, ev
}

func sessionOf(codecs []media.RTPCodec) media.Session { return media.Session{Codecs: codecs} }
