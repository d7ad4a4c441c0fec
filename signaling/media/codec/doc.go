// Package codec turns RTP payloads into linear PCM and back, one 20 ms frame
// at a time, for the media paths that cannot pass packets through: the
// transcoding bridge (legs that share no codec), the conference mixer and
// media streams.
//
// A Decoder and an Encoder are made for one RTP codec (as negotiated in SDP,
// a media.RTPCodec) and for the PCM rate the caller works at, which need not
// be the codec's own: G.711 (PCMU, PCMA) is resampled to and from 16 or
// 48 kHz with a Kaiser-windowed polyphase low-pass (Resampler), Opus is
// decoded and encoded by libopus at the asked rate directly (8, 12, 16, 24 or
// 48 kHz), so a PCMU↔Opus transcoder works at 8 kHz without a resampler.
//
//	dec, _ := codec.NewDecoder(media.RTPCodec{Name: "opus", Rate: 48000, Channels: 2}, 8000)
//	enc, _ := codec.NewEncoder(media.RTPCodec{Name: "PCMU", Rate: 8000}, 8000)
//	pcm, _ = dec.Decode(pcm[:0], payload)   // 160 samples for a 20 ms packet
//	out, _ = enc.Encode(out[:0], pcm)      // 160 µ-law bytes
//	ts += enc.TimestampStep()              // RTP clock units per frame (960 for Opus)
//
// Encoders take exactly FrameSamples(rate) samples (20 ms); decoders append
// whatever the packet holds (Opus packets may carry 10 to 120 ms). Both
// append to the slice they are given and allocate nothing when it has room:
// the hot paths keep one buffer each and pass it back. Codecs hold state
// (Opus, the resamplers' history) and serve one stream from one goroutine at
// a time.
//
// Opus needs cgo and libopus (Debian libopus-dev, and libopusfile-dev for the
// binding's file reader, which Parley does not use); without cgo NewDecoder
// and NewEncoder return ErrUnsupported for Opus.
package codec
