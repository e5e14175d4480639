package vp8

import (
	"bytes"
	"image"
	"image/draw"
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"
)

// minPSNR is the luma PSNR a decoded picture must reach against its source. VP8 at our
// presets' bit rates decodes these synthetic pictures at 45 to 60 dB (30 dB is the usual
// floor for "visibly the same picture"), while the same picture moved by 4 pixels, or the
// frame from another moment, scores 25 to 28 dB (logged below). 35 dB leaves a margin on
// both sides.
const minPSNR = 35

func frames(n, w, h int) []*image.YCbCr {
	out := make([]*image.YCbCr, n)
	for i := range out {
		img := testpattern.Bars(w, h)
		testpattern.PaintCounter(img, uint32(i))
		out[i] = img
	}
	return out
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	const w, h = 640, 480
	enc, err := NewEncoder(Config{Width: w, Height: h, BitRate: 1_000_000, KeyFrameInterval: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()

	src := frames(25, w, h)
	for i, img := range src {
		if i == 15 {
			enc.ForceKeyFrame()
		}
		f, err := enc.Encode(img)
		if err != nil {
			t.Fatal(err)
		}
		wantKey := i == 0 || i == 10 || i == 15
		if f.Key != wantKey || IsKeyFrame(f.Data) != f.Key {
			t.Fatalf("frame %d: key=%v (bitstream says %v), want %v", i, f.Key, IsKeyFrame(f.Data), wantKey)
		}
		got, err := dec.Decode(f.Data)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if n, ok := testpattern.ReadCounter(got); !ok || n != uint32(i) {
			t.Fatalf("frame %d: counter read %d ok=%v", i, n, ok)
		}
		full := image.Rect(0, 0, w, h)
		p := testpattern.PSNR(got, img, full)
		if p < minPSNR {
			t.Fatalf("frame %d: PSNR %.1f dB < %d", i, p, minPSNR)
		}
		if i == 20 {
			// The same check fails on a picture shifted by 4 pixels, and on a frame from
			// another moment (counter and moving box elsewhere).
			shifted := testpattern.PSNR(got, testpattern.Shift(img, 4), full)
			other := testpattern.PSNR(got, src[5], full)
			t.Logf("frame 20: PSNR %.1f dB against its source, %.1f dB shifted 4 px, %.1f dB against frame 5", p, shifted, other)
			if shifted >= minPSNR {
				t.Fatalf("shifted picture passes: PSNR %.1f dB", shifted)
			}
			if other >= minPSNR {
				t.Fatalf("picture from frame 5 passes as frame 20: PSNR %.1f dB", other)
			}
		}
	}
}

func TestDecodeRGBA(t *testing.T) {
	const w, h = 320, 240
	enc, err := NewEncoder(Config{Width: w, Height: h, BitRate: 800_000})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, _ := NewDecoder()
	defer dec.Close()
	src := testpattern.Bars(w, h)
	// Encode from RGBA input too: the RGB→YUV path.
	rgbaSrc := image.NewRGBA(src.Rect)
	draw.Draw(rgbaSrc, rgbaSrc.Rect, src, image.Point{}, draw.Src)
	var dst *image.RGBA
	for i := 0; i < 5; i++ {
		f, err := enc.Encode(rgbaSrc)
		if err != nil {
			t.Fatal(err)
		}
		prev := dst
		dst, err = dec.DecodeRGBA(f.Data, dst)
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && prev != dst {
			t.Fatal("DecodeRGBA did not reuse its destination")
		}
	}
	if p := testpattern.PSNR(dst, rgbaSrc, src.Rect); p < minPSNR {
		t.Fatalf("RGBA round trip PSNR %.1f dB", p)
	}
}

func TestDecodeErrors(t *testing.T) {
	dec, _ := NewDecoder()
	defer dec.Close()
	if _, err := dec.Decode(nil); err == nil {
		t.Fatal("empty frame decoded")
	}
	if _, err := dec.Decode([]byte{0x00, 0x01, 0x02, 0x03, 0x04}); err == nil {
		t.Fatal("garbage decoded")
	}
	enc, _ := NewEncoder(Config{Width: 160, Height: 120})
	defer enc.Close()
	img := testpattern.Bars(160, 120)
	key, _ := enc.Encode(img)
	delta, _ := enc.Encode(img)
	if _, err := dec.Decode(key.Data[:len(key.Data)/3]); err == nil {
		t.Log("truncated key frame decoded (libvpx conceals); continuing")
	}
	// After damage, the next key frame decodes.
	if _, err := dec.Decode(key.Data); err != nil {
		t.Fatalf("key frame after damage: %v", err)
	}
	if _, err := dec.Decode(delta.Data); err != nil {
		t.Fatalf("delta after key: %v", err)
	}
	if _, err := enc.Encode(testpattern.Bars(100, 100)); err == nil {
		t.Fatal("wrong-size frame encoded")
	}
}

// A key frame that declares a huge picture is refused before libvpx (which would spend half a
// second and a gigabyte on it); the decoder goes on with the next good key frame.
func TestDecodeRefusesHugeKeyFrames(t *testing.T) {
	dec, _ := NewDecoder()
	defer dec.Close()
	enc, _ := NewEncoder(Config{Width: 160, Height: 120})
	defer enc.Close()
	key, _ := enc.Encode(testpattern.Bars(160, 120))
	for _, c := range []struct {
		name string
		w, h int
	}{{"16383x16383", 16383, 16383}, {"wide", MaxWidth + 1, 100}, {"tall", 100, MaxHeight + 1}, {"empty", 0, 0}} {
		b := append([]byte(nil), key.Data...)
		b[6], b[7] = byte(c.w), b[7]&0xc0|byte(c.w>>8)&0x3f
		b[8], b[9] = byte(c.h), b[9]&0xc0|byte(c.h>>8)&0x3f
		if _, err := dec.Decode(b); err == nil || !strings.Contains(err.Error(), "pixels") {
			t.Fatalf("%s: %v, want a refusal naming the size", c.name, err)
		}
	}
	if _, err := dec.Decode(key.Data[:8]); err == nil {
		t.Fatal("a key frame cut inside its header decoded")
	}
	if _, err := dec.Decode(key.Data); err != nil {
		t.Fatalf("a good key frame after the refusals: %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to libvpx after a valid key frame: errors are fine,
// crashes are not, and a later key frame must still decode.
func FuzzDecode(f *testing.F) {
	enc, err := NewEncoder(Config{Width: 64, Height: 48})
	if err != nil {
		f.Fatal(err)
	}
	img := testpattern.Bars(64, 48)
	key, _ := enc.Encode(img)
	delta, _ := enc.Encode(img)
	enc.Close()
	f.Add(delta.Data)
	f.Add(key.Data[:len(key.Data)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		dec, err := NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		if _, err := dec.Decode(key.Data); err != nil {
			t.Fatal(err)
		}
		dec.Decode(b)
		dec.Skip(b)
		if _, err := dec.Decode(key.Data); err != nil {
			t.Fatalf("key frame after garbage: %v", err)
		}
	})
}

// Skip moves the decoder's state on exactly as a decode does: a picture decoded after
// skipping the ones before it is the same, byte for byte, as after decoding them all.
func TestSkipKeepsDecoderState(t *testing.T) {
	enc, err := NewEncoder(Config{Width: 64, Height: 48})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var frames [][]byte
	for i := range 5 {
		img := testpattern.Bars(64, 48)
		for y := range 48 { // a moving band, so each picture depends on the one before
			img.Y[y*img.YStride+(i*7+y)%64] = 255
		}
		f, err := enc.Encode(img)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, append([]byte(nil), f.Data...))
	}
	all, skip := mustDecoder(t), mustDecoder(t)
	var want, got *image.RGBA
	for i, f := range frames {
		if want, err = all.DecodeRGBA(f, want); err != nil {
			t.Fatal(err)
		}
		if i < len(frames)-1 {
			if err := skip.Skip(f); err != nil {
				t.Fatal(err)
			}
		} else if got, err = skip.DecodeRGBA(f, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(want.Pix, got.Pix) {
		t.Fatal("the picture after skipping differs from the one after decoding every picture")
	}
	if err := skip.Skip([]byte{1, 2, 3}); err == nil {
		t.Fatal("Skip took garbage")
	}
}

func mustDecoder(t *testing.T) *Decoder {
	t.Helper()
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
