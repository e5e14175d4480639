// Package e2e holds the product's end-to-end tests: the built dazaar-vision binary run as a
// broadcaster and as viewers, in separate processes on loopback, with real bitcoin and
// Lightning nodes (btcd simnet, two LND nodes). It has no code of its own.
package e2e
