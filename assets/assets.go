// Package assets holds the files the app embeds: its icon, as PNG (the window, the task bar
// and Home) and SVG (menus and high-density screens). FyneApp.toml names icon.png, the same
// picture at 512×512, for `fyne package` and the installers; the program embeds the 192×192
// copy, icon-192.png (made from icon.png with ImageMagick: convert icon.png -filter Lanczos
// -resize 192x192 -strip icon-192.png): decoding and scaling the large one took about 20 ms of
// every start, where this one takes one or two.
package assets

import (
	_ "embed"

	"fyne.io/fyne/v2"
)

//go:embed icon-192.png
var iconPNG []byte

//go:embed icon.svg
var iconSVG []byte

// Icon is the app's icon (PNG, 192×192: sharp on Home's 96-unit picture up to twice the scale).
var Icon = fyne.NewStaticResource("icon.png", iconPNG)

// IconSVG is the same icon as a scalable image.
var IconSVG = fyne.NewStaticResource("icon.svg", iconSVG)
