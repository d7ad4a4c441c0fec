// Package store is Parley's embedded SQLite storage: it opens a database file
// in WAL mode with one serialised writer connection and a pool of read-only
// connections, applies embedded, versioned migrations, and implements the
// repositories for accounts, API keys and applications.
//
// It is the only package of the core that imports github.com/mattn/go-sqlite3.
// Built-in plugins that own their own database open it through [OpenDB] with
// their own migrations.
package store
