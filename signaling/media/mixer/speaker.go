package mixer

import "time"

// SpeakerConfig tunes the speaker detector; zero values take the defaults.
type SpeakerConfig struct {
	// Threshold is the RMS level (of 32767) a frame must reach to count as
	// speech; default 300, about −41 dBFS (a phone's idle line is far below,
	// speech far above).
	Threshold float64
	// Attack is how long the level must stay above the threshold before
	// speaking starts; default 40 ms (a click does not count).
	Attack time.Duration
	// Hangover is how long the level must stay below it before speaking
	// stops; default 500 ms (the pauses between words do not end a turn).
	Hangover time.Duration
}

func (c SpeakerConfig) withDefaults() SpeakerConfig {
	if c.Threshold <= 0 {
		c.Threshold = 300
	}
	if c.Attack <= 0 {
		c.Attack = 40 * time.Millisecond
	}
	if c.Hangover <= 0 {
		c.Hangover = 500 * time.Millisecond
	}
	return c
}

// speaker is one participant's detector: energy above a threshold for
// attack frames starts speaking, below it for hangover frames stops it.
type speaker struct {
	threshold2       int64 // squared threshold × samples per frame
	attack, hangover int   // in frames
	speaking         bool
	above, below     int
}

func newSpeaker(c SpeakerConfig, frame int) speaker {
	return speaker{
		threshold2: int64(c.Threshold * c.Threshold * float64(frame)),
		attack:     max(1, int(c.Attack/Frame)),
		hangover:   max(1, int(c.Hangover/Frame)),
	}
}

// feed takes one frame's energy (the sum of squared samples) and reports a
// change: +1 speaking started, −1 stopped, 0 none.
func (s *speaker) feed(energy int64) int {
	if energy >= s.threshold2 {
		s.above++
		s.below = 0
	} else {
		s.below++
		s.above = 0
	}
	switch {
	case !s.speaking && s.above >= s.attack:
		s.speaking = true
		return 1
	case s.speaking && s.below >= s.hangover:
		s.speaking = false
		return -1
	}
	return 0
}
