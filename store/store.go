package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/parleyhq/parley/internal/sqlite"
)

// ErrNotFound is returned by repositories when a row does not exist.
var ErrNotFound = errors.New("not found")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// CoreMigrations returns the core database's embedded migrations.
func CoreMigrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded path is a constant
	}
	return sub
}

// Store is the core database with its repositories.
type Store struct {
	*sqlite.DB
	now  func() time.Time
	keys *keyCache
	blog *bindingLog
}

// Open opens the core database at file and migrates it to the latest schema.
func Open(ctx context.Context, file string) (*Store, error) {
	db, err := sqlite.Open(ctx, file, CoreMigrations())
	if err != nil {
		return nil, err
	}
	s := &Store{DB: db, now: time.Now, keys: newKeyCache(SigningKeyTTL), blog: &bindingLog{slack: bindingLogSlack}}
	if err := s.moveLegacyBindings(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Page selects a window of a list: Page is zero-based.
type Page struct {
	Page, Size int
}

func (p Page) offset() int { return p.Page * p.Size }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

type scanner interface{ Scan(...any) error }

// queryPage runs q (which must end in "LIMIT ? OFFSET ?", supplied here) and
// scans one page of rows, reporting whether more rows follow the page.
func queryPage[T any](ctx context.Context, db *sql.DB, what, q string, args []any, p Page, scan func(scanner) (T, error)) ([]T, bool, error) {
	args = append(args, p.Size+1, p.offset())
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, false, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list %s: %w", what, err)
	}
	more := len(out) > p.Size
	if more {
		out = out[:p.Size]
	}
	return out, more, nil
}
