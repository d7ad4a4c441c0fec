// Package server is Parley's composition root: it turns a config.Config into
// a running server — data directory and its lock, the SQLite store, the REST
// API, health and metrics endpoints — and shuts it all down gracefully.
package server
