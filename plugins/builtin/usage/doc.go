// Package usage is the built-in usage-trigger plugin (SPEC §4b), run as a
// subprocess (`parley plugin serve usage`) with its own SQLite database. Its
// contract and the kind's vocabulary (categories, periods, trigger
// actions, its Config) are plugins/proto/usage/v1; it imports only the SDK,
// that package and internal leaves.
//
// Counters: per account × category × period (day, month, year, all time;
// UTC, by the event's timestamp) for count and usage. Ingestion is
// idempotent: each batch is one transaction that inserts the event ids into
// seen_events (multi-row INSERT … ON CONFLICT DO NOTHING RETURNING id), adds
// the events not seen before to the counters (one upsert per touched
// counter, RETURNING the new totals) and evaluates the triggers of the
// touched account/category pairs. Ids are remembered for
// usagev1.Config.EventRetention.
//
// Triggers: UsageCategory, TriggerValue ("+N" is made absolute at creation:
// current value of the watched period + N), TriggerBy count|usage, Recurring
// daily|monthly|yearly|alltime|"" (the last two watch the all-time counter
// and fire once ever). A trigger fires when the counter of its current
// period (by the plugin's clock) reaches the value and it has not fired in
// that period; the period start is stored with the trigger, so a recurring
// trigger re-arms at the next period boundary. Firing writes the trigger's
// state and an outbox row in the same transaction as the counter update.
//
// Outbox: the host claims due rows (ClaimOutbox, leased per holder,
// long-polled), performs the callback and action, and reports back
// (CompleteOutbox); failures are retried after BackoffMin·2^(n-1) up to
// BackoffMax, and an entry is dead after MaxAttempts. The idempotency token
// is "<trigger sid>-<period start ms>": the same for every attempt of one
// firing.
package usage
