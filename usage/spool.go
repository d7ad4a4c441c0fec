package usage

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protodelim"

	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
)

// spool keeps events the plugin could not take, in segment files of
// length-delimited protobuf Events under dir. New events append to the open
// segment; replay reads closed segments oldest first and deletes each once
// the plugin has acknowledged all of it (a crash in between replays the
// segment again; the plugin drops the duplicates by id).
type spool struct {
	dir      string
	maxSize  int64 // per segment
	maxTotal int64 // all segments; beyond it events are refused

	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	size  int64
	next  uint64   // number of the next segment
	ready []string // closed segments waiting for replay, oldest first
	dirty bool     // appended since the last sync
	bytes int64    // size of all segments
}

const segPrefix, segSuffix = "seg-", ".pb"

// errSpoolFull: the spool reached its size limit.
var errSpoolFull = errors.New("usage spool is full")

func openSpool(dir string, maxSize, maxTotal int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("usage spool: %w", err)
	}
	s := &spool{dir: dir, maxSize: maxSize, maxTotal: maxTotal}
	names, err := filepath.Glob(filepath.Join(dir, segPrefix+"*"+segSuffix))
	if err != nil {
		return nil, fmt.Errorf("usage spool: %w", err)
	}
	type seg struct {
		n    uint64
		name string
	}
	var segs []seg
	for _, name := range names {
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), segPrefix), segSuffix), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, seg{n, name})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].n < segs[j].n })
	for _, sg := range segs {
		s.ready = append(s.ready, sg.name) // every segment of a previous run is closed
		s.next = sg.n + 1
		if st, err := os.Stat(sg.name); err == nil {
			s.bytes += st.Size()
		}
	}
	return s, nil
}

// append writes events to the open segment (buffered; sync makes them durable).
func (s *spool) append(evs []*usagev1.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maxTotal > 0 && s.bytes >= s.maxTotal {
		return fmt.Errorf("%w (%d bytes in %s)", errSpoolFull, s.bytes, s.dir)
	}
	if s.f == nil {
		name := filepath.Join(s.dir, fmt.Sprintf("%s%020d%s", segPrefix, s.next, segSuffix))
		f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("usage spool: %w", err)
		}
		s.next++
		s.f, s.w, s.size = f, bufio.NewWriterSize(f, 64<<10), 0
	}
	for _, e := range evs {
		n, err := protodelim.MarshalTo(s.w, e)
		if err != nil {
			return fmt.Errorf("usage spool: %w", err)
		}
		s.size += int64(n)
		s.bytes += int64(n)
	}
	s.dirty = true
	if s.size >= s.maxSize {
		return s.closeLocked()
	}
	return nil
}

// sync flushes and fsyncs the open segment.
func (s *spool) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *spool) syncLocked() error {
	if s.f == nil || !s.dirty {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("usage spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("usage spool: %w", err)
	}
	s.dirty = false
	return nil
}

// closeLocked closes the open segment and queues it for replay.
func (s *spool) closeLocked() error {
	if s.f == nil {
		return nil
	}
	err := s.syncLocked()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("usage spool: %w", cerr)
	}
	s.ready = append(s.ready, s.f.Name())
	s.f, s.w = nil, nil
	return err
}

// pending reports whether anything waits for replay (closing the open
// segment so it can be replayed).
func (s *spool) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ready) == 0 && s.f != nil {
		_ = s.closeLocked()
	}
	return len(s.ready) > 0
}

// oldest reads the oldest closed segment. A truncated last record (a crash
// mid-write) is ignored.
func (s *spool) oldest() (string, []*usagev1.Event, error) {
	s.mu.Lock()
	if len(s.ready) == 0 {
		s.mu.Unlock()
		return "", nil, nil
	}
	name := s.ready[0]
	s.mu.Unlock()
	f, err := os.Open(name)
	if err != nil {
		return name, nil, fmt.Errorf("usage spool: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var out []*usagev1.Event
	for {
		e := &usagev1.Event{}
		if err := protodelim.UnmarshalFrom(r, e); err != nil {
			// io.EOF ends a whole segment; anything else is a tail cut
			// short by a crash: keep what was readable.
			return name, out, nil
		}
		out = append(out, e)
	}
}

// done deletes a replayed segment.
func (s *spool) done(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ready) > 0 && s.ready[0] == name {
		s.ready = s.ready[1:]
	}
	if st, err := os.Stat(name); err == nil {
		s.bytes = max(0, s.bytes-st.Size())
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("usage spool: %w", err)
	}
	return nil
}

func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.syncLocked()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	s.f, s.w = nil, nil
	return err
}
