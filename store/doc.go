// Package store is Parley's core database: the repositories for accounts,
// API keys, applications, SIP domains and credentials, bindings, calls,
// recordings, numbers and messages, with their record types (Account,
// CallRecord, Message, …) and ErrNotFound.
//
// The database is SQLite, opened through internal/sqlite with the embedded
// migrations/. Consumers do not depend on *Store: each declares the
// interface it needs (server/api's Store, presence.Persister,
// accesstoken.Keys, …) and *Store satisfies it, so another engine can
// implement the same methods beside this one without touching callers.
package store
