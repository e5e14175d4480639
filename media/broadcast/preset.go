package broadcast

import (
	"fmt"
	"strings"
	"time"
)

// Preset is a quality level. The three presets differ in picture size, frame rate and
// bit rate alike (the original app mapped two of its three to the same bit rate).
type Preset struct {
	Name             string
	Width, Height    int
	FrameRate        int // frames a second
	VideoBitRate     int // bits a second
	AudioBitRate     int // bits a second
	KeyFrameInterval time.Duration
	// CPUUsed is libvpx's speed (see vp8.Config); 0 picks the encoder's default.
	CPUUsed int
}

// The presets. Bit rates are VP8 CBR targets that look clean at each size and rate on
// camera content: about 0.08 bits a pixel a frame at Low, 0.13 at Medium, 0.09 at High.
var (
	Low    = Preset{Name: "low", Width: 640, Height: 360, FrameRate: 15, VideoBitRate: 300_000, AudioBitRate: 24_000, KeyFrameInterval: 2 * time.Second}
	Medium = Preset{Name: "medium", Width: 640, Height: 480, FrameRate: 30, VideoBitRate: 1_200_000, AudioBitRate: 32_000, KeyFrameInterval: 2 * time.Second}
	High   = Preset{Name: "high", Width: 1280, Height: 720, FrameRate: 30, VideoBitRate: 2_500_000, AudioBitRate: 64_000, KeyFrameInterval: 2 * time.Second}
)

// Presets lists the presets from lowest to highest.
func Presets() []Preset { return []Preset{Low, Medium, High} }

// PresetByName finds a preset by name, ignoring case.
func PresetByName(name string) (Preset, error) {
	for _, p := range Presets() {
		if strings.EqualFold(p.Name, name) {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("unknown quality preset %q (low, medium or high)", name)
}

// keyFrameFrames is the key frame interval in frames.
func (p Preset) keyFrameFrames() int {
	n := int(p.KeyFrameInterval.Seconds()*float64(p.FrameRate) + 0.5)
	return max(n, 1)
}
