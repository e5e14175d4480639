package block

import "testing"

func TestHeaderSameShape(t *testing.T) {
	v := func(w, h int) *VideoParams {
		return &VideoParams{Codec: CodecVP8, Width: w, Height: h, FrameRateNum: 15, FrameRateDen: 1}
	}
	a := func(rate, ch int) *AudioParams { return &AudioParams{Codec: CodecOpus, SampleRate: rate, Channels: ch} }
	base := &Header{Video: v(640, 360), Audio: a(48000, 2), Preset: "low"}
	cases := []struct {
		name string
		o    *Header
		want bool
	}{
		{"same, another preset name, bitrate and description", &Header{Video: &VideoParams{Codec: CodecVP8, Width: 640, Height: 360, FrameRateNum: 30, FrameRateDen: 2, BitRate: 9}, Audio: a(48000, 2), Preset: "x", Description: "d"}, true},
		{"another picture size", &Header{Video: v(1280, 720), Audio: a(48000, 2)}, false},
		{"another frame rate", &Header{Video: &VideoParams{Codec: CodecVP8, Width: 640, Height: 360, FrameRateNum: 30, FrameRateDen: 1}, Audio: a(48000, 2)}, false},
		{"no sound", &Header{Video: v(640, 360)}, false},
		{"no video", &Header{Audio: a(48000, 2)}, false},
		{"mono", &Header{Video: v(640, 360), Audio: a(48000, 1)}, false},
		{"another rate", &Header{Video: v(640, 360), Audio: a(24000, 2)}, false},
		{"another video codec", &Header{Video: &VideoParams{Codec: "VP9", Width: 640, Height: 360}, Audio: a(48000, 2)}, false},
	}
	for _, c := range cases {
		if got := base.SameShape(c.o); got != c.want {
			t.Errorf("%s: SameShape %v, want %v", c.name, got, c.want)
		}
		if got := c.o.SameShape(base); got != c.want {
			t.Errorf("%s (reversed): SameShape %v, want %v", c.name, got, c.want)
		}
	}
}
