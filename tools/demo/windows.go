//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/natefinch/atomic"

	"github.com/dazaarvision/dazaar-vision/app/card"
	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/app/ui"
	"github.com/dazaarvision/dazaar-vision/wallet/price"
)

// loopback: the two windows find each other on this machine.
var loopback = session.NetworkConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, LAN: true, Public: true}

// windowOptions are what both windows share: a data folder and an in-memory secret store of
// their own (nothing of the demo is kept).
func windowOptions(c config, log *slog.Logger) (ui.Options, error) {
	if c.dir == "" {
		return ui.Options{}, errors.New("no folder given (-dir)")
	}
	data, err := session.OpenDataDir(filepath.Join(c.dir, "data"))
	if err != nil {
		return ui.Options{}, err
	}
	return ui.Options{Data: data, Store: secrets.NewMemory(), Network: loopback, Logger: log}, nil
}

// runSeller is the broadcaster's window: it goes live at once with the test camera and
// microphone, the demo's price and the seller's LND, and writes the card for the viewer.
func runSeller(ctx context.Context, c config, log *slog.Logger) error {
	opts, err := windowOptions(c, log)
	if err != nil {
		return err
	}
	p, err := price.Parse(c.price)
	if err != nil {
		return fmt.Errorf("the price %q: %w", c.price, err)
	}
	mac, err := os.ReadFile(c.lndMacaroon)
	if err != nil {
		return fmt.Errorf("cannot read the seller's invoice macaroon: %w", err)
	}
	cert, err := os.ReadFile(c.lndCert)
	if err != nil {
		return fmt.Errorf("cannot read the seller's LND certificate: %w", err)
	}
	// Handed on in hex: wallet/lightning.New trims white space off the macaroon it is given,
	// which cuts a binary macaroon whose signature ends in such a byte (about 1 in 50).
	mac = []byte(hex.EncodeToString(mac))
	f := session.GoLive{Name: "Dazaar Vision demo", Quality: "low",
		Description: "The test camera and a tone, sold by the minute over Lightning on a local simnet.",
		Price:       p, Lightning: &session.LightningSetup{Host: c.lndHost, Network: "simnet", Macaroon: mac, TLSCert: cert}}
	video, audio := session.Sources()
	for i := range video {
		if video[i].Test {
			f.Video = &video[i]
		}
	}
	for i := range audio {
		if audio[i].Test {
			f.Audio = &audio[i]
		}
	}
	opts.Title = "Dazaar Vision demo: broadcaster"
	opts.GoLive = &f
	opts.OnLive = func(text string) {
		if err := atomic.WriteFile(c.cardFile, strings.NewReader(text+"\n")); err != nil {
			log.Error("cannot hand the card to the viewer's window", "err", err)
		}
	}
	return ui.Run(ctx, opts)
}

// runViewer is the viewer's window: the card pasted, an invoice asked for, and the demo wallet
// to pay it with one click.
func runViewer(ctx context.Context, c config, log *slog.Logger) error {
	opts, err := windowOptions(c, log)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(c.cardFile)
	if err != nil {
		return fmt.Errorf("cannot read the card: %w", err)
	}
	cd, err := card.Parse(string(b))
	if err != nil {
		return fmt.Errorf("the card: %w", err)
	}
	payer, err := newLNDPayer(c.payHost, c.payMacaroon, c.payCert)
	if err != nil {
		return err
	}
	opts.Title = "Dazaar Vision demo: viewer"
	opts.Card = cd.String()
	opts.BuyMinutes = uint32(c.minutes)
	opts.Payer = payer
	return ui.Run(ctx, opts)
}

// lndPayer pays invoices from the demo wallet: the buyer's LND, over its REST API with its
// admin macaroon (a simnet node made for the demo; never a real wallet).
type lndPayer struct {
	host string
	mac  string
	hc   *http.Client
}

func newLNDPayer(host, macPath, certPath string) (*lndPayer, error) {
	mac, err := os.ReadFile(macPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read the demo wallet's macaroon: %w", err)
	}
	cert, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read the demo wallet's certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cert) {
		return nil, errors.New("the demo wallet's certificate is not PEM")
	}
	return &lndPayer{host: host, mac: hex.EncodeToString(mac),
		hc: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}, nil
}

// Pay pays bolt11, trying again for up to 10 s while a fresh channel's link comes up.
func (p *lndPayer) Pay(ctx context.Context, bolt11 string) error {
	var last error
	for range 50 {
		last = p.payOnce(ctx, bolt11)
		if last == nil || ctx.Err() != nil {
			return last
		}
		if s := last.Error(); strings.Contains(s, "already paid") || strings.Contains(s, "expired") {
			return last
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return last
}

func (p *lndPayer) payOnce(ctx context.Context, bolt11 string) error {
	body, _ := json.Marshal(map[string]string{"payment_request": bolt11})
	req, err := http.NewRequestWithContext(ctx, "POST", "https://"+p.host+"/v1/channels/transactions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Grpc-Metadata-macaroon", p.mac)
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("the demo wallet (LND at %s) does not answer: %w", p.host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the demo wallet refused the payment: %s %s", resp.Status, bytes.TrimSpace(b))
	}
	var r struct {
		PaymentError string `json:"payment_error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("the demo wallet's answer is not understood: %w", err)
	}
	if r.PaymentError != "" {
		return fmt.Errorf("the payment failed: %s", r.PaymentError)
	}
	return nil
}
