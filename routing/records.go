package routing

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/store"
	"github.com/parleyhq/parley/usage"
)

// Records keeps calls and recordings as the engine reports them
// (calls.Events): in the store, and as usage events.
type Records struct {
	store   Store
	log     *slog.Logger
	publish func(...usage.Event)
}

// NewRecords creates the engine's call records; publish (optional) sends
// usage events and must not block.
func NewRecords(st Store, log *slog.Logger, publish func(...usage.Event)) Records {
	return Records{store: st, log: log, publish: publish}
}

// legType is the usage category of the calling side: client, sip or number.
func legType(c *calls.Call) string {
	party := c.From
	if c.Direction != "inbound" {
		party = c.To
	}
	// Kind is set for a malformed identity too (client: with no name).
	id, _ := presence.ParseIdentity(party)
	switch {
	case id.Kind == presence.KindClient:
		return "client"
	case id.Kind == presence.KindSIP, strings.HasPrefix(party, "sips:"):
		return "sip"
	}
	return "number"
}

// CallStatus implements calls.Events.
func (c Records) CallStatus(call *calls.Call, status string) {
	snap := call.Snapshot()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.store.SaveCall(ctx, store.CallRecord{Sid: call.Sid, AccountSid: call.AccountSid, ParentCallSid: call.ParentCallSid,
		ApplicationSid: call.ApplicationSid, From: call.From, To: call.To, CallerName: call.CallerName, Direction: call.Direction,
		Status: status, Started: snap.Started, Answered: snap.Answered, Ended: snap.Ended, Duration: snap.Duration})
	if err != nil {
		c.log.Error("saving call", "call", call.Sid, "err", err)
	}
	if c.publish != nil {
		switch {
		case status == calls.StatusQueued || status == calls.StatusRinging:
			// Counted as it starts (a repeat for queued→ringing has the same ids).
			c.publish(usage.CallStarted(call.AccountSid, call.Sid, call.Direction, legType(call), snap.Started)...)
		case !snap.Ended.IsZero():
			c.publish(usage.CallStarted(call.AccountSid, call.Sid, call.Direction, legType(call), snap.Started)...)
			c.publish(usage.CallMinutes(call.AccountSid, call.Sid, call.Direction, legType(call), snap.Duration, snap.Ended)...)
		}
	}
}

// RecordingDone implements calls.Events.
func (c Records) RecordingDone(r calls.Recording) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.store.CreateRecording(ctx, store.RecordingRecord{Sid: r.Sid, AccountSid: r.AccountSid, CallSid: r.CallSid,
		Path: r.Path, Duration: r.Duration, DateCreated: r.Created}); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Error("saving recording", "recording", r.Sid, "err", err)
	}
	if c.publish != nil {
		c.publish(usage.Recording(r.AccountSid, r.Sid, r.Duration, r.Created))
	}
}
