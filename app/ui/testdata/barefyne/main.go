// Command barefyne is the start-up reference for the app's window: a bare Fyne window (one
// label, the app's size) on the same driver, built and started the same way, so that the
// window's start-up time can be reported as a ratio to it measured in the same run
// (app/ui's TestWindowOpens and BenchmarkStartup).
package main

import (
	"image/color"
	"os"
	"os/signal"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

func main() {
	a := app.NewWithID("vision.dazaar.barefyne")
	w := a.NewWindow("Bare Fyne")
	// A small gradient so that the first frame has as many colours as the app's (the test
	// waits for more than 50).
	g := canvas.NewHorizontalGradient(color.NRGBA{R: 0xff, A: 0xff}, color.NRGBA{B: 0xff, A: 0xff})
	g.SetMinSize(fyne.NewSize(256, 64))
	w.SetContent(container.NewVBox(widget.NewLabel("A bare Fyne window: the start-up reference."),
		container.NewHBox(g)))
	w.Resize(fyne.NewSize(1100, 720))
	// SIGINT ends it cleanly whenever it comes, as the app's (Fyne's own handler is set up only
	// once the event loop runs, after the first paint).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	go func() {
		<-sig
		fyne.Do(a.Driver().Quit) // not app.Quit: see app/ui.Run
	}()
	w.ShowAndRun()
}
