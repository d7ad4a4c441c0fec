//go:build !cgo

package sqlite

// Parley stores its data with github.com/mattn/go-sqlite3, which needs cgo.
// A build with CGO_ENABLED=0 would compile and then fail at run time, so it is
// refused here at compile time instead. Build with CGO_ENABLED=1 and a C
// compiler (Debian: apt-get install gcc), as the Makefile does.
var _ = parley_requires_cgo__build_with_CGO_ENABLED_1
