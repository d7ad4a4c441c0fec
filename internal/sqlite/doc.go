// Package sqlite opens Parley's SQLite databases: WAL mode, one serialised
// writer connection (SQLite allows one writer at a time; serialising in Go
// avoids SQLITE_BUSY storms) beside a pool of read-only connections, and
// embedded, versioned migrations recorded in schema_migrations.
//
// The core store (package store) and each built-in plugin open their own
// database through [Open] with their own migrations. This package and the
// store are the only ones that import github.com/mattn/go-sqlite3; a
// CGO_ENABLED=0 build fails here at compile time (nocgo.go).
package sqlite
