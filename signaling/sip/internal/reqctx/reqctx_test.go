package reqctx

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestReqContext(t *testing.T) {
	closed := func(c context.Context) bool {
		select {
		case <-c.Done():
			return true
		default:
			return false
		}
	}
	t.Run("deadline", func(t *testing.T) {
		c := &Context{deadline: time.Now().Add(30 * time.Millisecond)}
		defer c.Cancel()
		if d, ok := c.Deadline(); !ok || !d.Equal(c.deadline) {
			t.Fatalf("Deadline() = %v, %v", d, ok)
		}
		child, stop := context.WithCancel(c)
		defer stop()
		select {
		case <-child.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("not done after its deadline")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
			t.Fatalf("errors %v, %v", c.Err(), child.Err())
		}
	})
	t.Run("cancel before anyone waits", func(t *testing.T) {
		c := New()
		c.Cancel()
		if c.ctx != nil {
			t.Fatal("a timer was made though nothing waited")
		}
		if !closed(c) || !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("after cancel: done %v, err %v", closed(c), c.Err())
		}
	})
	t.Run("cancel while waited on", func(t *testing.T) {
		c := New()
		if closed(c) || c.Err() != nil {
			t.Fatal("done before its deadline")
		}
		child, stop := context.WithCancel(c)
		defer stop()
		c.Cancel()
		select {
		case <-child.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("child not canceled")
		}
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("err %v", c.Err())
		}
	})
}
