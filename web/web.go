package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed sdk/parley.js phone/index.html phone/phone.js phone/phone.css portal embed
var assets embed.FS

// Portal returns the portal's files (index.html, app.js, style.css).
func Portal() fs.FS { return sub("portal") }

// Embed returns the partner embed snippet's files (parley-embed.js).
func Embed() fs.FS { return sub("embed") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(assets, dir)
	if err != nil {
		panic(err) // fixed at build time
	}
	return f
}

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
