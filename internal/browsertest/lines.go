package browsertest

import (
	"strings"
	"sync"
)

// Lines is a concurrency-safe list of log lines.
type Lines struct {
	mu    sync.Mutex
	lines []string
}

func (l *Lines) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

// All returns a copy of the lines.
func (l *Lines) All() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// String joins the lines.
func (l *Lines) String() string { return strings.Join(l.All(), "\n") }
