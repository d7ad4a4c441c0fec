// Package web holds the browser assets Parley serves: the JavaScript SDK
// for the JSON signalling protocol (/sdk/parley.js) and the demo softphone
// (/phone), embedded in the binary.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed sdk/parley.js phone/index.html phone/phone.js phone/phone.css
var assets embed.FS

// Mount adds GET /sdk/parley.js and GET /phone (with its files) to mux.
func Mount(mux *http.ServeMux) {
	sdk, _ := fs.Sub(assets, "sdk")
	phone, _ := fs.Sub(assets, "phone")
	mux.Handle("GET /sdk/", noCache(http.StripPrefix("/sdk/", http.FileServerFS(sdk))))
	mux.Handle("GET /phone/", noCache(http.StripPrefix("/phone/", http.FileServerFS(phone))))
	mux.Handle("GET /phone", http.RedirectHandler("/phone/", http.StatusMovedPermanently))
}

// noCache makes browsers revalidate: the assets change with the binary.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}
