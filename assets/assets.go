// Package assets holds the files the app embeds: its icon, as PNG (the window and task bar)
// and SVG (menus and high-density screens). FyneApp.toml names icon.png for `fyne package`.
package assets

import (
	_ "embed"

	"fyne.io/fyne/v2"
)

//go:embed icon.png
var iconPNG []byte

//go:embed icon.svg
var iconSVG []byte

// Icon is the app's icon (PNG, 512×512).
var Icon = fyne.NewStaticResource("icon.png", iconPNG)

// IconSVG is the same icon as a scalable image.
var IconSVG = fyne.NewStaticResource("icon.svg", iconSVG)
