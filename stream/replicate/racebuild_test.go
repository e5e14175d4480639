//go:build race

package replicate

// raceBuild: this test binary has the race detector (see runPlain).
const raceBuild = true
