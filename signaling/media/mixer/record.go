package mixer

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/parleyhq/parley/signaling/media"
)

// recordFrames is how much audio a recording buffers between the mixer's
// clock and the goroutine that writes the files (5 s): a disk that stalls
// longer loses frames (counted), the mix never waits for it.
const recordFrames = 250

// Recording writes one or two tracks of a conference to WAV files as it
// goes: the mix (Mixer.Record) or a participant's two streams, what it says
// and what it hears (Participant.Record). The mixer's clock copies each
// frame into a buffer from a fixed pool; a goroutine of the recording's own
// writes it out.
type Recording struct {
	ws      []*media.WAVWriter
	n       int // samples per track per frame
	tracks  int // a participant's: 1 in, 2 out, 3 both
	free    chan []int16
	full    chan []int16
	done    chan struct{}
	stop    func() // detaches the recording from the mixer
	once    sync.Once
	err     error
	frames  atomic.Uint64
	dropped atomic.Uint64
	werr    error // first write error, set by the writer goroutine
}

func newRecording(rate int, ws ...*media.WAVWriter) (*Recording, error) {
	for _, w := range ws {
		if w == nil {
			return nil, errors.New("record: nil WAV writer")
		}
		if w.Rate() != rate {
			return nil, fmt.Errorf("record: WAV at %d Hz, the mixer works at %d Hz", w.Rate(), rate)
		}
	}
	n := rate / 50
	r := &Recording{ws: ws, n: n, free: make(chan []int16, recordFrames), full: make(chan []int16, recordFrames), done: make(chan struct{})}
	pool := make([]int16, recordFrames*n*len(ws))
	for i := range recordFrames {
		r.free <- pool[i*n*len(ws) : (i+1)*n*len(ws)]
	}
	go r.write()
	return r, nil
}

func (r *Recording) write() {
	defer close(r.done)
	for buf := range r.full {
		for t, w := range r.ws {
			if err := w.Write(buf[t*r.n : (t+1)*r.n]); err != nil && r.werr == nil {
				r.werr = err
			}
		}
		r.free <- buf
	}
}

// frame hands one frame of each track to the writer (called by the mixer's
// clock with the mixer locked); a full pool drops it.
func (r *Recording) frame(tracks ...[]int16) {
	select {
	case buf := <-r.free:
		for t, pcm := range tracks {
			copy(buf[t*r.n:(t+1)*r.n], pcm)
		}
		r.full <- buf
		r.frames.Add(1)
	default:
		r.dropped.Add(1)
	}
}

// RecordingStats counts a recording's frames.
type RecordingStats struct {
	Frames  uint64 // frames written (or queued to be)
	Dropped uint64 // frames lost because the writer fell 5 s behind
}

// Stats returns the counts.
func (r *Recording) Stats() RecordingStats {
	return RecordingStats{Frames: r.frames.Load(), Dropped: r.dropped.Load()}
}

// Close stops recording, writes what is buffered and closes the WAV files
// (their headers patched). The files themselves are the caller's to close.
// It is safe to call more than once, also after the mixer or the
// participant is gone.
func (r *Recording) Close() error {
	r.once.Do(func() {
		r.stop()
		close(r.full)
		<-r.done
		errs := []error{r.werr}
		for _, w := range r.ws {
			errs = append(errs, w.Close())
		}
		r.err = errors.Join(errs...)
	})
	return r.err
}
