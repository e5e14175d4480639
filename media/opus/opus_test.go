package opus

import (
	"io"
	"math"
	"testing"

	"github.com/dazaarvision/dazaar-vision/media/internal/testpattern"
	mdopus "github.com/pion/mediadevices/pkg/codec/opus"
	"github.com/pion/mediadevices/pkg/io/audio"
	"github.com/pion/mediadevices/pkg/prop"
	"github.com/pion/mediadevices/pkg/wave"
)

// sine is an audio.Reader of n 20 ms chunks of a tone.
func sine(freq float64, rate, chunks int) audio.Reader {
	phase, i := 0.0, 0
	return audio.ReaderFunc(func() (wave.Audio, func(), error) {
		if i == chunks {
			return nil, func() {}, io.EOF
		}
		i++
		a := wave.NewFloat32Interleaved(wave.ChunkInfo{Channels: 1, Len: rate / 50, SamplingRate: rate})
		for k := 0; k < rate/50; k++ {
			a.SetFloat32(k, 0, wave.Float32Sample(0.3*math.Sin(phase)))
			phase += 2 * math.Pi * freq / float64(rate)
		}
		return a, func() {}, nil
	})
}

// TestToneRoundTrip encodes tones with mediadevices' Opus encoder and checks the frequency
// measured after decoding.
func TestToneRoundTrip(t *testing.T) {
	for _, freq := range []float64{440, 1000, 3150} {
		params, _ := mdopus.NewParams()
		params.BitRate = 32000
		enc, err := params.BuildAudioEncoder(sine(freq, 48000, 50), prop.Media{Audio: prop.Audio{SampleRate: 48000, ChannelCount: 1}})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := NewDecoder(48000, 1)
		if err != nil {
			t.Fatal(err)
		}
		pcm := make([]float32, dec.MaxSamples())
		var out []float32
		for {
			pkt, release, err := enc.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n, err := dec.Decode(pkt, pcm)
			release()
			if err != nil {
				t.Fatal(err)
			}
			if n != 960 {
				t.Fatalf("packet decoded to %d samples, want 960", n)
			}
			out = append(out, pcm[:n]...)
		}
		enc.Close()
		dec.Close()
		// Skip the codec's start-up (look-ahead and ramp).
		got := testpattern.Frequency(out[4800:], 48000)
		if math.Abs(got-freq) > freq*0.005 {
			t.Fatalf("tone of %.0f Hz decoded as %.2f Hz", freq, got)
		}
		if rms := testpattern.RMS(out[4800:]); math.Abs(rms-0.3/math.Sqrt2) > 0.05 {
			t.Fatalf("tone of %.0f Hz: RMS %.3f, want about %.3f", freq, rms, 0.3/math.Sqrt2)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	dec, err := NewDecoder(48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]float32, dec.MaxSamples()*2)
	if _, err := dec.Decode(make([]byte, MaxPacketSize+1), pcm); err == nil {
		t.Fatal("oversized packet accepted")
	}
	if _, err := dec.Decode([]byte{0xff, 0xff, 0xff}, pcm); err == nil {
		t.Fatal("invalid packet decoded")
	}
	if n, err := dec.Decode(nil, pcm); err != nil || n != 960 {
		t.Fatalf("loss concealment: %d samples, %v", n, err)
	}
	if _, err := dec.Decode([]byte{0xf8}, pcm[:10]); err == nil {
		t.Fatal("short output buffer accepted")
	}
	dec.Close()
	if _, err := dec.Decode([]byte{0xf8}, pcm); err != ErrClosed {
		t.Fatalf("after close: %v", err)
	}
	if _, err := NewDecoder(44100, 1); err == nil {
		t.Fatal("44.1 kHz decoder created")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0xf8, 0xff, 0xfe})
	f.Add([]byte{0x78, 1, 2, 3, 4})
	dec, err := NewDecoder(48000, 2)
	if err != nil {
		f.Fatal(err)
	}
	pcm := make([]float32, dec.MaxSamples()*2)
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := dec.Decode(b, pcm); err == nil && (n < 0 || n > dec.MaxSamples()) {
			t.Fatalf("decoded %d samples", n)
		}
	})
}
