// Package layers holds no code: its test checks that the module's packages
// import only packages of lower layers (ARCHITECTURE.md's layer diagram), so
// the layering stays true as the code grows.
package layers
