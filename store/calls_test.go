package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCallsAndRecordings(t *testing.T) {
	ctx := context.Background()
	st, file := openTemp(t)
	a, _ := st.CreateAccount(ctx, NewAccount{})
	other, _ := st.CreateAccount(ctx, NewAccount{})
	start := time.Now().UTC().Truncate(time.Millisecond)
	c := CallRecord{Sid: "CA1", AccountSid: a.Sid, From: "sip:a@x", To: "client:bob", Direction: "inbound", Status: "ringing", Started: start}
	if err := st.SaveCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.Status, c.Answered, c.Ended, c.Duration = "completed", start.Add(time.Second), start.Add(5*time.Second), 4*time.Second
	if err := st.SaveCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	st.SaveCall(ctx, CallRecord{Sid: "CA2", AccountSid: a.Sid, From: "sip:b@x", To: "client:bob", Direction: "inbound", Status: "busy"})
	st.SaveCall(ctx, CallRecord{Sid: "CA3", AccountSid: other.Sid, From: "sip:a@x", To: "client:bob", Direction: "inbound", Status: "busy"})
	st.Close()
	st2, err := Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	got, err := st2.Call(ctx, "CA1")
	if err != nil || got.Status != "completed" || got.Duration != 4*time.Second || !got.Answered.Equal(start.Add(time.Second)) || !got.Started.Equal(start) {
		t.Fatalf("call after reopen %+v %v", got, err)
	}
	list, more, _ := st2.ListCalls(ctx, a.Sid, CallFilter{}, Page{Size: 10})
	if len(list) != 2 || more || list[0].Sid != "CA2" {
		t.Fatalf("list %+v", list)
	}
	list, _, _ = st2.ListCalls(ctx, a.Sid, CallFilter{Status: "completed", From: "sip:a@x"}, Page{Size: 10})
	if len(list) != 1 || list[0].Sid != "CA1" {
		t.Fatalf("filtered %+v", list)
	}
	if err := st2.CreateRecording(ctx, RecordingRecord{Sid: "RE1", AccountSid: a.Sid, CallSid: "CA1", Path: "/x.wav", Duration: 1500 * time.Millisecond, DateCreated: start}); err != nil {
		t.Fatal(err)
	}
	r, err := st2.Recording(ctx, "RE1")
	if err != nil || r.Duration != 1500*time.Millisecond || r.CallSid != "CA1" {
		t.Fatalf("recording %+v %v", r, err)
	}
	if recs, _, _ := st2.ListRecordings(ctx, a.Sid, "CA2", Page{Size: 5}); len(recs) != 0 {
		t.Fatal("recordings of another call listed")
	}
	if _, err := st2.Call(ctx, "CA9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing call: %v", err)
	}
}
