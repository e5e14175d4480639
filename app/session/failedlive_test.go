package session

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/broadcast"
	"github.com/dazaarvision/dazaar-vision/media/capture"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// unlistenable is a network set-up libp2p cannot listen on (port 70000 does not exist).
var unlistenable = NetworkConfig{Listen: []string{"/ip4/127.0.0.1/tcp/70000"}, LAN: true, Public: true}

// A new stream that fails to go live after its feed was made (the camera cannot be opened,
// networking cannot start) leaves nothing behind: no entry under my streams (which showed
// without a name, card or price, and resumed as a free stream), no feed, no signing key.
func TestFailedGoLiveLeavesNoStream(t *testing.T) {
	defer checkLeaks(t)()
	video, audio := testDevices(t)
	busy := capture.Device{ID: "no-such-camera", Kind: capture.Camera, Label: "/dev/video9"}
	cases := []struct {
		name    string
		video   *capture.Device
		network NetworkConfig
		want    string
	}{
		{"the camera cannot be opened", &busy, loopback, "camera"},
		{"networking cannot start", video, unlistenable, "networking"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			d, err := OpenDataDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			store := secrets.NewMemory()
			b, err := NewBroadcaster(BroadcasterConfig{Data: d, Secrets: store, Name: "Garden", Description: "Tomatoes",
				Preset: broadcast.Low, Video: c.video, Audio: audio, Price: price.Free, Network: c.network, Logger: testLog(t)})
			if err != nil {
				t.Fatal(err)
			}
			err = b.Start(ctx)
			b.Stop()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("going live: %v, want an error about the %s", err, c.want)
			}
			mine, err := d.MyStreams()
			if err != nil || len(mine) != 0 {
				t.Fatalf("my streams after a failed Go live: %+v %v", mine, err)
			}
			if ents, err := os.ReadDir(filepath.Join(d.Root, "streams")); err == nil && len(ents) != 0 {
				t.Errorf("the failed stream's directory is left: %v", ents[0].Name())
			}
			names, _ := store.List()
			for _, n := range names {
				if strings.HasPrefix(n, "feed/") {
					t.Errorf("the failed stream's signing key is left in the secret store: %s", n)
				}
			}
		})
	}
}
