//go:build windows

package ui

import (
	"errors"

	"fyne.io/fyne/v2/driver"
	"golang.org/x/sys/windows"
)

var (
	user32              = windows.NewLazySystemDLL("user32.dll")
	procIsWindow        = user32.NewProc("IsWindow")
	procIsIconic        = user32.NewProc("IsIconic")
	procIsWindowVisible = user32.NewProc("IsWindowVisible")
)

// nativeProbe asks Windows whether the window is minimised or hidden (user32's IsIconic and
// IsWindowVisible take any thread's call).
func nativeProbe(c any) *hiddenProbe {
	w, ok := c.(driver.WindowsWindowContext)
	if !ok || w.HWND == 0 {
		return nil
	}
	h := w.HWND
	return &hiddenProbe{
		hidden: func() (bool, error) {
			if r, _, _ := procIsWindow.Call(h); r == 0 {
				return false, errors.New("the window is gone")
			}
			iconic, _, _ := procIsIconic.Call(h)
			visible, _, _ := procIsWindowVisible.Call(h)
			return iconic != 0 || visible == 0, nil
		},
		close: func() {},
	}
}
