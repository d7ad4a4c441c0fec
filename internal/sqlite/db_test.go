package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"testing/fstest"
)

func TestMigrationErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		fs   fstest.MapFS
	}{
		{"bad name", fstest.MapFS{"init.sql": {Data: []byte("SELECT 1")}}},
		{"duplicate version", fstest.MapFS{"0001_a.sql": {Data: []byte("SELECT 1")}, "0001_b.sql": {Data: []byte("SELECT 1")}}},
		{"bad sql", fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE (")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(ctx, filepath.Join(t.TempDir(), "x.db"), tt.fs)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
	// A failed migration leaves nothing half-applied: version stays 0.
	file := filepath.Join(t.TempDir(), "y.db")
	_, err := Open(ctx, file, fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE t (a); CREATE TABLE (")}})
	if err == nil {
		t.Fatal("bad migration applied")
	}
	db, err := Open(ctx, file, fstest.MapFS{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	db.R.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 't'`).Scan(&n)
	if v, _ := db.SchemaVersion(ctx); v != 0 || n != 0 {
		t.Fatalf("half-applied migration: version %d, table t present %d", v, n)
	}
}
