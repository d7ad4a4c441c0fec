// Package usage is the host side of usage triggers (SPEC §4b): it gets usage
// events from the platform to the usage plugin, reads usage records and
// manages triggers through it, and delivers fired triggers. The contract
// and the kind's vocabulary (categories, periods, actions) are
// plugins/proto/usage/v1; the built-in plugin is plugins/builtin/usage.
//
// Publisher: Publish(Event) is called on hot paths (REST requests, SIP
// registrations, call legs, messages, recordings, TwiML fetches). It
// validates the event, assigns an id if it has none, and puts it on a
// bounded channel without waiting; when the channel is full the event is
// appended to a disk spool instead. One sender goroutine fills batches (up
// to BatchSize events or FlushInterval) and sends them over the plugin's
// Ingest gRPC stream, one batch in flight, each acknowledged after the
// plugin's SQLite commit. A failed or late acknowledgement spools the batch
// and marks the plugin down for RetryInterval (batches go straight to the
// spool meanwhile). While the plugin is up the sender replays the spool,
// oldest segment first, and deletes a segment once all of it is
// acknowledged. Delivery is at least once; the plugin drops repeated event
// ids, so a resent batch counts once. Metrics: parley_usage_events_*_total
// (published, sent, spooled, replayed, dropped).
//
// Deliverer: the plugin writes an outbox row in the same transaction as the
// counter update that crosses a trigger. The deliverer long-polls
// ClaimOutbox (lease per entry), carries out the trigger's action
// (suspend the account, or lower an admission limit) and sends the callback
// signed with the account's current auth token (X-Twilio-Signature and
// X-Parley-Signature via internal/webhook), then reports the outcome; the
// plugin reschedules failures with exponential back-off. The host does the
// HTTP so that auth tokens never leave the host and a rotated token is used
// at once; the plugin keeps the durable state.
//
// Client: Records and trigger CRUD for the REST API.
//
// The composition root (server/platform.go) adapts the core store and the
// admission client to the deliverer's Accounts and Actions (auth tokens;
// suspend-account and limit-admission actions, both idempotent and only
// tightening): this package imports neither. Helpers build the events
// of each part of the platform with stable ids: CallEnded, Message,
// Recording, TwiMLFetch, Registration, APIRequest.
//
// Metrics (private registry): parley_usage_events_{published,sent,spooled,
// replayed,dropped}_total, parley_usage_queue_length,
// parley_usage_trigger_callbacks_{delivered,failed}_total,
// parley_usage_outbox_{pending,dead}.
package usage
