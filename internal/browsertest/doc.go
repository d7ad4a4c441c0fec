// Package browsertest starts the system's headless Chromium for tests and
// drives it with chromedp. It is used only from tests: the WebRTC gateway,
// the demo phone and the partner portal are checked in a real browser.
//
// Chromium runs with a fresh profile, fake media devices and the flags this
// closed-network machine needs (no background networking, no component
// updates). When Chromium is missing the test is skipped, or fails when
// PARLEY_REQUIRE_PEERS=1 (as `make test` sets it).
package browsertest
