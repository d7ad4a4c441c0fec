// Package playback is the outbound half of a media stream (issue 20's
// <Connect><Stream>): an application pushes 8 kHz µ-law chunks of any size,
// named marks between them and clears; a Queue plays the audio out in 20 ms
// frames paced at real time through a FrameSender, reports each mark once
// the audio queued before it has played out, and on Clear drops everything
// queued before the next frame (within 20 ms: barge-in).
//
// The producer — a WebSocket reader — never waits: Push only copies into a
// bounded ring (it grows from 1 s up to Config.MaxBuffered, default 60 s)
// and a chunk that does not fit is dropped and counted, as are marks beyond
// MaxMarks.
//
//	q := playback.New(media.NewSender(ep, media.PCMU, eventPT), playback.Config{
//		OnMark: func(m playback.Mark) { marks <- m }, // must not block
//	})
//	go q.Run(ctx)               // until the stream ends
//	q.Push(payload)            // each "media" message, base64-decoded
//	q.Mark("greeting-done")    // each "mark" message
//	q.Clear()                  // a "clear" message: pending marks are reported with Cleared set
//
// The FrameSender is media.Sender for a G.711 leg (it converts to A-law when
// the leg speaks PCMA) or CodecSender for any codec media/codec serves, such
// as a browser's Opus. When the queue is empty nothing is sent (the next
// frame starts a talkspurt with the marker bit) unless Config.IdleSilence
// asks for comfort silence. A consumer with its own 20 ms clock (the
// conference mixer's announcements) calls Next instead of Run and mixes the
// frames itself. Nothing on the playing side allocates per frame.
package playback
