// Package mixer is the conference bridge (issue 19): per conference, a Mixer
// takes each participant's RTP from its anchored media.Endpoint into a
// jitter buffer of its own (reordering, late packets dropped, depth
// configurable), and on a 20 ms clock decodes every participant (PCMU, PCMA,
// Opus through media/codec), applies its gain, mixes, and sends each one the
// mix minus its own voice, encoded in its codec with its own SSRC, sequence
// numbers and timestamps.
//
//	m, _ := mixer.New(mixer.Config{OnEvent: func(e mixer.Event) { events <- e }})
//	go m.Run(ctx)
//	alice, _ := m.Join(mixer.Join{ID: "CA1", Endpoint: ep1, Codec: pcmu})
//	bob, _ := m.Join(mixer.Join{ID: "CA2", Endpoint: ep2, Codec: opus})
//	bob.SetMuted(true)                  // heard by no one, hears all
//	alice.SetHold(true, mixer.NewLoop(music)) // hears music, heard by no one
//	coach.SetCoaching(agent)            // only agent hears coach; coach hears all
//	m.Announce(src)                     // to all; alice.Announce(src) to one
//	rec, _ := m.Record(wav)             // the mix; p.Record(in, out) a participant's two streams
//	…
//	alice.Leave(); rec.Close(); m.Close()
//
// The mix is summed in 32 bits and saturated once per listener. A speaker
// detector per participant (energy over a threshold for an attack time,
// below it for a hangover) reports speaking starts and stops through
// Config.OnEvent; Config.NoiseGate optionally leaves quiet lines out of the
// mix. Hold music and announcements are Sources: a Loop of PCM, or a
// playback.Queue (NewQueueSource) that an application feeds with marks and
// clears. Recordings are WAV files at the mixer's rate written by a
// goroutine of their own from a fixed pool of frames, so a slow disk drops
// recorded frames (counted) and never delays the mix.
//
// Nothing on the hot path allocates: a packet's arrival copies it into a
// preallocated slot of its participant's jitter buffer, and a frame reuses
// each participant's decode, mix, encode and packet buffers. The clock
// counts frames that ran late (Stats), the figure the benchmark holds under
// 1 %.
package mixer
