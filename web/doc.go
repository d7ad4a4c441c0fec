// Package web holds Parley's browser assets, embedded in the binary and
// served without a build step: the JavaScript SDK for the JSON signalling
// protocol (/sdk/parley.js), the demo softphone (/phone), the account portal
// (plain ES modules and CSS under portal/) and the partner embed snippet
// (embed/parley-embed.js). The portal's and the snippet's HTTP handlers live
// with their feature (partners.Portal); Mount serves the SDK and the phone.
package web
