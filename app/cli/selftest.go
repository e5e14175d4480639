package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/media/vp8"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
	"github.com/dazaarvision/dazaar-vision/stream/p2p"
	"github.com/dazaarvision/dazaar-vision/stream/replicate"
	"github.com/dazaarvision/dazaar-vision/stream/wire"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// selftest checks, without a camera, a network or a display, that this build's codecs and
// networking work on this machine: `dazaar-vision selftest [-frames N] [-timeout D]`. It
// is what the Windows installer's test runs under wine, and what a person whose app
// misbehaves can run to tell a broken install from a broken network.
//
// It prints one line a check and fails with the first check that does not pass.
func (e *env) selftest(args []string) error {
	fs := e.flags("selftest")
	frames := fs.Int("frames", 10, "pictures to take from the test camera (2 to 300)")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	if _, err := parse(fs, args, 0, 0, "[-frames N] [-timeout D]"); err != nil {
		return err
	}
	if *frames < 2 || *frames > 300 {
		return usagef("-frames %d: choose 2 to 300", *frames)
	}
	ctx, cancel := context.WithTimeout(e.ctx, *timeout)
	defer cancel()
	fmt.Fprintf(e.out, "self-test: %s/%s, %s\n", runtime.GOOS, runtime.GOARCH, runtime.Version())

	encoded, err := selftestVP8(e, *frames)
	if err != nil {
		return fmt.Errorf("self-test failed: video: %w", err)
	}
	dir, err := os.MkdirTemp("", "dazaar-vision-selftest-")
	if err != nil {
		return fmt.Errorf("self-test failed: cannot make a temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := selftestReplicate(ctx, e, dir, encoded); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("self-test failed: network: did not finish within %v: %w", *timeout, err)
		}
		return fmt.Errorf("self-test failed: network: %w", err)
	}
	fmt.Fprintln(e.out, "self-test passed")
	return nil
}

// selftestVP8 takes n pictures from the test camera, encodes them with VP8 and decodes them
// again, and returns the encoded frames.
func selftestVP8(e *env, n int) ([]vp8.Frame, error) {
	const w, h = 320, 240
	dev, err := capture.TestDevice(capture.Camera)
	if err != nil {
		return nil, fmt.Errorf("no test camera: %w", err)
	}
	src, err := capture.OpenVideo(dev, capture.VideoWant{Width: w, Height: h, FrameRate: 30})
	if err != nil {
		return nil, fmt.Errorf("cannot open the test camera: %w", err)
	}
	defer src.Close()
	enc, err := vp8.NewEncoder(vp8.Config{Width: w, Height: h, BitRate: 500_000, CPUUsed: 8})
	if err != nil {
		return nil, fmt.Errorf("cannot start the VP8 encoder: %w", err)
	}
	defer enc.Close()
	dec, err := vp8.NewDecoder()
	if err != nil {
		return nil, fmt.Errorf("cannot start the VP8 decoder: %w", err)
	}
	defer dec.Close()

	start := time.Now()
	var out []vp8.Frame
	total := 0
	for i := 0; len(out) < n; i++ {
		if i >= 4*n {
			return nil, fmt.Errorf("the encoder gave only %d frames for %d pictures", len(out), i)
		}
		img, release, err := src.Read()
		if err != nil {
			return nil, fmt.Errorf("cannot read picture %d from the test camera: %w", i+1, err)
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			release()
			return nil, fmt.Errorf("the test camera gave a %d×%d picture, not %d×%d", b.Dx(), b.Dy(), w, h)
		}
		f, err := enc.Encode(img)
		release()
		if err != nil {
			return nil, fmt.Errorf("cannot encode picture %d: %w", i+1, err)
		}
		if len(f.Data) == 0 {
			continue // rate control dropped it
		}
		if len(out) == 0 && !f.Key {
			return nil, errors.New("the first encoded frame is not a key frame")
		}
		if err := selftestDecode(dec, f.Data, w, h); err != nil {
			return nil, fmt.Errorf("cannot decode frame %d: %w", len(out)+1, err)
		}
		out = append(out, f)
		total += len(f.Data)
	}
	fmt.Fprintf(e.out, "ok  VP8: %d pictures from the test camera (%d×%d) encoded into %d bytes and decoded again (%v)\n",
		n, w, h, total, time.Since(start).Round(time.Millisecond))
	return out, nil
}

// selftestDecode decodes one frame and checks its size.
func selftestDecode(dec *vp8.Decoder, data []byte, w, h int) error {
	img, err := dec.Decode(data)
	if err != nil {
		return err
	}
	if b := img.Bounds(); b != image.Rect(0, 0, w, h) {
		return fmt.Errorf("decoded a %d×%d picture, not %d×%d", b.Dx(), b.Dy(), w, h)
	}
	return nil
}

// selftestReplicate puts the frames into a signed feed and replicates it between two libp2p
// hosts in this process over TCP on the loopback address, then decodes the copy.
func selftestReplicate(ctx context.Context, e *env, dir string, frames []vp8.Frame) error {
	start := time.Now()
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return fmt.Errorf("no randomness for a feed key: %w", err)
	}
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		return fmt.Errorf("cannot make a feed key: %w", err)
	}
	w, err := feed.Create(filepath.Join(dir, "seller"), feed.Options{KeyPair: &kp, Logger: e.log})
	if err != nil {
		return fmt.Errorf("cannot create a feed: %w", err)
	}
	defer w.Close()
	for i, f := range frames {
		var err error
		if f.Key {
			_, err = w.AppendSync(f.Data)
		} else {
			_, err = w.Append(f.Data)
		}
		if err != nil {
			return fmt.Errorf("cannot append block %d to the feed: %w", i, err)
		}
	}
	key := w.Key()
	r, err := feed.Create(filepath.Join(dir, "viewer"), feed.Options{Key: &key, Logger: e.log})
	if err != nil {
		return fmt.Errorf("cannot create the viewer's copy of the feed: %w", err)
	}
	defer r.Close()

	// TCP on loopback only: no QUIC, no UDP (wine has no UDP for Go), nothing outside.
	seller, err := selftestNode(ctx, e)
	if err != nil {
		return err
	}
	defer seller.Close()
	viewerNode, err := selftestNode(ctx, e)
	if err != nil {
		return err
	}
	defer viewerNode.Close()
	s, err := replicate.NewSeller(replicate.SellerConfig{Host: seller.Host(), Feed: w, Gate: replicate.FreeGate{}, Logger: e.log})
	if err != nil {
		return fmt.Errorf("cannot serve the feed: %w", err)
	}
	defer s.Close()
	v, err := replicate.NewViewer(replicate.ViewerConfig{Dialer: viewerNode, Seller: seller.AddrInfo(), Feed: r,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, Logger: e.log})
	if err != nil {
		return fmt.Errorf("cannot start the viewer: %w", err)
	}
	// The viewer's session goroutine is owned here: cancelled and waited for before return.
	vctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- v.Run(vctx) }()
	fetchErr := v.Fetch(ctx, 0, uint64(len(frames)))
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) && fetchErr == nil {
		fetchErr = err
	}
	if fetchErr != nil {
		return fmt.Errorf("the viewer did not get the feed from the seller over TCP on %v: %w", seller.AddrInfo().Addrs, fetchErr)
	}

	dec, err := vp8.NewDecoder()
	if err != nil {
		return fmt.Errorf("cannot start the VP8 decoder: %w", err)
	}
	defer dec.Close()
	total := 0
	for i, f := range frames {
		b, err := r.Read(uint64(i))
		if err != nil {
			return fmt.Errorf("cannot read block %d of the copy: %w", i, err)
		}
		if !bytes.Equal(b, f.Data) {
			return fmt.Errorf("block %d of the copy differs from the seller's", i)
		}
		if _, err := dec.Decode(b); err != nil {
			return fmt.Errorf("cannot decode block %d of the copy: %w", i, err)
		}
		total += len(b)
	}
	if r.Head().Length != w.Head().Length || r.Head().TreeHash != w.Head().TreeHash {
		return errors.New("the copy's signed head differs from the seller's")
	}
	fmt.Fprintf(e.out, "ok  libp2p: %d blocks (%d bytes) replicated over TCP on 127.0.0.1 between two hosts, every block verified against the feed key, and decoded (%v)\n",
		len(frames), total, time.Since(start).Round(time.Millisecond))
	return nil
}

// selftestNode starts a libp2p node that listens on loopback TCP only.
func selftestNode(ctx context.Context, e *env) (*p2p.Node, error) {
	id, err := p2p.NewIdentity()
	if err != nil {
		return nil, fmt.Errorf("cannot make a node identity: %w", err)
	}
	sk, err := p2p.ParseIdentity(id)
	if err != nil {
		return nil, fmt.Errorf("cannot read the node identity: %w", err)
	}
	n, err := p2p.New(ctx, p2p.Config{Identity: sk, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		PrivateAddrs: true, Reachability: p2p.ReachabilityPublic, DHTClientOnly: true, NoRelayService: true,
		Protocols: []protocol.ID{wire.Protocol}, Logger: e.log})
	if err != nil {
		return nil, fmt.Errorf("cannot start a libp2p node on 127.0.0.1: %w", err)
	}
	return n, nil
}
