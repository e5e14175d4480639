//go:build !race

package replicate

const raceBuild = false
