package session

import "github.com/dazaarvision/dazaar-vision/media/block"

// Header is the stream header the current player read (nil before it has one). Its Start is
// the capture clock's zero as wall time, so a picture decoded with pts was captured at
// Start.Add(pts): measurements (make bench's glass-to-glass figure) use it.
func (v *Viewer) Header() *block.Header {
	v.playMu.Lock()
	defer v.playMu.Unlock()
	if v.player == nil {
		return nil
	}
	return v.player.Header()
}
