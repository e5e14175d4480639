// Command webrtcref is make bench's reference for the glass-to-glass figure: the same test
// camera and VP8 settings as a Dazaar Vision preset (size, rate, bit rate, a key frame every
// 2 s), sent the way a pion/webrtc v4 + mediadevices app sends video: mediadevices' VP8
// encoder (or, with -encoder ours, media/vp8 through the same mediadevices interface), a pion
// TrackLocalStaticSample, and two PeerConnections in this process talking over loopback UDP
// (host candidates on 127.0.0.1 only, the default interceptors). The receiver puts frames
// together on the RTP marker bit (not samplebuilder, which holds each frame until the next
// one starts) and decodes them with mediadevices' libvpx decoder. Each picture carries a frame
// counter painted as 16×16 blocks when the camera hands it over; the time from then to the
// decoded picture is the latency.
//
// It prints one line in `go test -bench` form, which scripts/bench.d/app.sh reads:
//
//	BenchmarkWebRTCRef/640x480/medium/mediadevices  600  7.1 p50-ms ... 85 cpu-%
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/mediadevices/pkg/codec"
	mdvpx "github.com/pion/mediadevices/pkg/codec/vpx"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/vp8"
)

func main() {
	presetName := flag.String("preset", "medium", "low, medium or high (size, frame rate and bit rate)")
	frames := flag.Int("frames", 600, "pictures to measure after the warm-up")
	warmup := flag.Duration("warmup", 3*time.Second, "time to run before measuring")
	encName := flag.String("encoder", "mediadevices", "mediadevices (its VP8 encoder, the reference) or ours (media/vp8)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *presetName, *encName, *frames, *warmup); err != nil {
		log.Error("webrtcref failed", "err", err)
		os.Exit(1)
	}
}

// stamps remembers when each painted counter left the camera.
type stamps struct {
	mu sync.Mutex
	n  uint32
	at map[uint16]time.Time
}

func (s *stamps) wrap(r video.Reader) video.Reader {
	return video.ReaderFunc(func() (image.Image, func(), error) {
		img, release, err := r.Read()
		if err != nil {
			return img, release, err
		}
		now := time.Now()
		s.mu.Lock()
		n := s.n
		s.n++
		s.at[uint16(n)] = now
		s.mu.Unlock()
		paintCounter(img, uint16(n))
		return img, release, nil
	})
}

func (s *stamps) when(n uint16) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[n]
	return t, ok
}

func run(ctx context.Context, presetName, encName string, want int, warmup time.Duration) error {
	p, err := broadcast.PresetByName(presetName)
	if err != nil {
		return err
	}
	dev, err := capture.TestDevice(capture.Camera)
	if err != nil {
		return err
	}
	vs, err := capture.OpenVideo(dev, capture.VideoWant{Width: p.Width, Height: p.Height, FrameRate: float64(p.FrameRate)})
	if err != nil {
		return err
	}
	defer vs.Close()
	st := &stamps{at: map[uint16]time.Time{}}
	pm := prop.Media{Video: prop.Video{Width: p.Width, Height: p.Height, FrameRate: float32(p.FrameRate)}}
	keyEvery := int(p.KeyFrameInterval.Seconds() * float64(p.FrameRate))
	var enc codec.ReadCloser
	switch encName {
	case "mediadevices":
		params, err := mdvpx.NewVP8Params()
		if err != nil {
			return err
		}
		params.BitRate, params.KeyFrameInterval = p.VideoBitRate, keyEvery
		enc, err = params.BuildVideoEncoder(st.wrap(vs.Reader), pm)
		if err != nil {
			return err
		}
	case "ours":
		b := &vp8.Builder{Config: vp8.Config{BitRate: p.VideoBitRate, KeyFrameInterval: keyEvery}}
		if enc, err = b.BuildVideoEncoder(st.wrap(vs.Reader), pm); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown -encoder %q", encName)
	}
	defer enc.Close()

	api := loopbackAPI()
	send, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer send.Close()
	recv, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer recv.Close()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "webrtcref")
	if err != nil {
		return err
	}
	sender, err := send.AddTrack(track)
	if err != nil {
		return err
	}
	keyReq := make(chan struct{}, 1)
	go func() { // ends when the sender PeerConnection closes
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, pk := range pkts {
				if _, ok := pk.(*rtcp.PictureLossIndication); ok {
					select {
					case keyReq <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	if _, err := recv.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := &results{}
	recv.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		recv.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
		go receive(ctx, recv, tr, pm, st, res) // ends when the track's reads fail (close) or ctx ends
	})
	if err := connect(ctx, send, recv); err != nil {
		return err
	}

	// The sending loop: camera → encoder → samples, as mediadevices' own track does.
	sendErr := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			select {
			case <-keyReq:
				if kc, ok := enc.Controller().(codec.KeyFrameController); ok {
					kc.ForceKeyFrame()
				}
			default:
			}
			data, release, err := enc.Read()
			if err != nil {
				sendErr <- err
				return
			}
			err = track.WriteSample(media.Sample{Data: data, Duration: time.Second / time.Duration(p.FrameRate)})
			release()
			if err != nil && !errors.Is(err, net.ErrClosed) {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()

	select {
	case <-time.After(warmup):
	case err := <-sendErr:
		return fmt.Errorf("sending: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	res.start(want)
	cpu0, q0, t0 := cpuTime(), runQueueWait(), time.Now()
	select {
	case <-res.done:
	case err := <-sendErr:
		return fmt.Errorf("sending: %w", err)
	case <-time.After(time.Duration(want)*100*time.Millisecond + time.Minute):
		return fmt.Errorf("only %d of %d pictures arrived", res.count(), want)
	case <-ctx.Done():
		return ctx.Err()
	}
	cpu, q, wall := cpuTime()-cpu0, runQueueWait()-q0, time.Since(t0)
	cancel()
	send.Close()
	recv.Close()
	<-sendErr
	lat, bad, lost := res.get()
	slices.Sort(lat)
	fmt.Printf("BenchmarkWebRTCRef/%dx%d/%s/%s\t%d\t%.2f p50-ms\t%.2f p90-ms\t%.2f p99-ms\t%.2f max-ms\t%.1f decoded-fps\t%.1f cpu-%%\t%.0f runq-ms/s\t%d bad-reads\t%d lost-frames\n",
		p.Width, p.Height, p.Name, encName, len(lat), ms(pct(lat, .5)), ms(pct(lat, .9)), ms(pct(lat, .99)), ms(pct(lat, 1)),
		float64(len(lat))/wall.Seconds(), 100*cpu.Seconds()/wall.Seconds(), q.Seconds()*1000/wall.Seconds(), bad, lost)
	return nil
}

// loopbackAPI gathers UDP4 host candidates on 127.0.0.1 only.
func loopbackAPI() *webrtc.API {
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// connect does the offer/answer exchange in process, with complete candidate lists.
func connect(ctx context.Context, send, recv *webrtc.PeerConnection) error {
	offer, err := send.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(send)
	if err := send.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	if err := recv.SetRemoteDescription(*send.LocalDescription()); err != nil {
		return err
	}
	answer, err := recv.CreateAnswer(nil)
	if err != nil {
		return err
	}
	gathered = webrtc.GatheringCompletePromise(recv)
	if err := recv.SetLocalDescription(answer); err != nil {
		return err
	}
	<-gathered
	if err := send.SetRemoteDescription(*recv.LocalDescription()); err != nil {
		return err
	}
	connected := make(chan struct{})
	var once sync.Once
	send.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	if send.ConnectionState() == webrtc.PeerConnectionStateConnected {
		once.Do(func() { close(connected) })
	}
	select {
	case <-connected:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("the two PeerConnections did not connect in 30 s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// results collects latencies once start is called, until want of them.
type results struct {
	mu        sync.Mutex
	on        bool
	want      int
	lat       []time.Duration
	bad, lost int
	done      chan struct{}
}

func (r *results) start(want int) {
	r.mu.Lock()
	r.on, r.want, r.lat, r.bad, r.lost, r.done = true, want, nil, 0, 0, make(chan struct{})
	r.mu.Unlock()
}

func (r *results) add(d time.Duration, bad, lost bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return
	}
	switch {
	case bad:
		r.bad++
	case lost:
		r.lost++
	default:
		r.lat = append(r.lat, d)
		if len(r.lat) == r.want {
			r.on = false
			close(r.done)
		}
	}
}

func (r *results) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lat)
}

func (r *results) get() ([]time.Duration, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lat), r.bad, r.lost
}

// receive assembles VP8 frames on the marker bit, decodes them and reads their counters.
// A frame with a missing packet is dropped and the picture waits for a key frame (asked
// for with a PLI).
func receive(ctx context.Context, pc *webrtc.PeerConnection, tr *webrtc.TrackRemote, pm prop.Media, st *stamps, res *results) {
	var in bytes.Buffer
	dec, err := mdvpx.NewDecoder(&in, pm)
	if err != nil {
		slog.Error("decoder", "err", err)
		return
	}
	defer dec.Close()
	var (
		frame    []byte
		started  bool // the frame began with its partition head
		broken   bool
		needKey  = true
		lastSeq  uint16
		haveSeq  bool
		depacket codecs.VP8Packet
	)
	for ctx.Err() == nil {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if haveSeq && pkt.SequenceNumber != lastSeq+1 {
			broken = true
		}
		lastSeq, haveSeq = pkt.SequenceNumber, true
		payload, err := depacket.Unmarshal(pkt.Payload)
		if err != nil {
			broken = true
			continue
		}
		if depacket.S == 1 && depacket.PID == 0 {
			frame, started, broken = frame[:0], true, false
		}
		frame = append(frame, payload...)
		if !pkt.Marker {
			continue
		}
		complete := started && !broken && len(frame) > 0
		started = false
		if !complete {
			res.add(0, false, true)
			needKey = true
			pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
			continue
		}
		key := frame[0]&1 == 0
		if needKey && !key {
			continue
		}
		in.Reset()
		in.Write(frame)
		img, release, err := dec.Read()
		if err != nil {
			needKey = true
			continue
		}
		needKey = false
		now := time.Now()
		n, ok := readCounter(img)
		release()
		at, known := st.when(n)
		if !ok || !known {
			res.add(0, true, false)
			continue
		}
		res.add(now.Sub(at), false, false)
	}
}

// The counter: 16 bits and their complement as 16×16 luma blocks along the top row.
const blk, bits = 16, 16

func paintCounter(img image.Image, n uint16) {
	y, ok := img.(*image.YCbCr)
	if !ok {
		return
	}
	for i := 0; i < 2*bits; i++ {
		bit := n>>(i%bits)&1 == 1
		if i >= bits {
			bit = !bit
		}
		c := uint8(16)
		if bit {
			c = 235
		}
		for yy := 0; yy < blk; yy++ {
			for xx := i * blk; xx < (i+1)*blk; xx++ {
				y.Y[y.YOffset(xx, yy)] = c
				o := y.COffset(xx, yy)
				y.Cb[o], y.Cr[o] = 128, 128
			}
		}
	}
}

func readCounter(img image.Image) (uint16, bool) {
	y, ok := img.(*image.YCbCr)
	if !ok {
		return 0, false
	}
	var v, inv uint16
	for i := 0; i < 2*bits; i++ {
		sum := 0
		for yy := 4; yy < blk-4; yy++ {
			for xx := i*blk + 4; xx < (i+1)*blk-4; xx++ {
				sum += int(y.Y[y.YOffset(xx, yy)])
			}
		}
		if sum/((blk-8)*(blk-8)) > 128 {
			if i < bits {
				v |= 1 << i
			} else {
				inv |= 1 << (i - bits)
			}
		}
	}
	return v, v == ^inv
}

// runQueueWait is the time this process's threads spent runnable but waiting for a CPU.
func runQueueWait() time.Duration {
	tasks, _ := filepath.Glob("/proc/self/task/*/schedstat")
	var sum time.Duration
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(raw)); len(f) >= 2 {
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
