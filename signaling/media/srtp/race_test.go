//go:build race

package srtp

// raceDetector is true in a -race build, where sync.Pool drops a share of
// what is put back (pion/srtp's buffers among it), so allocation counts are
// the detector's, not this package's.
const raceDetector = true
