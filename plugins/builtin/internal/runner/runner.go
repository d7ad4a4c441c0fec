// Package runner is what every built-in plugin's `parley plugin serve
// <name>` does, written once: open the plugin's own SQLite database with its
// embedded migrations, build the service over it, run its background loop,
// and serve it through the SDK under the plugin's name and version until the
// host ends the process.
//
// It lives beside the built-ins rather than in plugins/sdk so that the
// public SDK, which external plugin authors import, needs no database
// driver (and no cgo).
package runner

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/sdk"
)

// Plugin describes one built-in plugin.
type Plugin struct {
	Kind    sdk.Kind
	Name    string
	Version string
	// DB is the database file (from the plugin's configuration) and
	// Migrations its schema.
	DB         string
	Migrations fs.FS
	// New builds the service over the opened database: impl implements the
	// kind's gRPC service; run, when not nil, runs in the background until
	// the plugin ends.
	New func(ctx context.Context, db *sqlite.DB) (impl any, run func(context.Context), err error)
}

// Serve runs p until the host ends it. Nothing is written to stdout before
// the go-plugin handshake.
func Serve(ctx context.Context, p Plugin) error {
	db, err := sqlite.Open(ctx, p.DB, p.Migrations)
	if err != nil {
		return fmt.Errorf("%s plugin database: %w", p.Name, err)
	}
	defer db.Close()
	impl, run, err := p.New(ctx, db)
	if err != nil {
		return fmt.Errorf("%s plugin: %w", p.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if run != nil {
		go run(ctx)
	}
	return sdk.Serve(p.Kind, impl, sdk.Options{Name: p.Name, Version: p.Version})
}

// Migrations returns the *.sql files of the migrations/ directory embedded
// in fsys (a built-in's `//go:embed migrations/*.sql`).
func Migrations(fsys embed.FS) fs.FS {
	sub, err := fs.Sub(fsys, "migrations")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}
