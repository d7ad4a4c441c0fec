// Package web holds Parley's browser assets, embedded in the binary (with
// the embed package) and served without a build step: the account portal (plain ES
// modules and CSS under portal/) and the partner embed snippet
// (embed/parley-embed.js). Their HTTP handlers live with their features
// (partners.Portal).
package web

import (
	"embed"
	"io/fs"
)

//go:embed portal embed
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
