package session

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/dazaarvision/dazaar-vision/wallet/lightning"
	"github.com/dazaarvision/dazaar-vision/wallet/onchain"
)

// backendCheckTimeout bounds each payment back-end's answer at start-up.
const backendCheckTimeout = 10 * time.Second

// checkPayments asks each payment back-end of a paid stream to answer before the stream goes
// live, so that a card is never shared for a stream that cannot sell: LND must take the macaroon,
// the bitcoin node the RPC credentials. The errors say what is wrong in plain words.
func checkPayments(ctx context.Context, store SecretStore, ln *LightningSetup, oc *OnChainSetup) error {
	if ln == nil && oc == nil {
		return errors.New("a paid stream needs a way to be paid: set up Lightning (LND) or an on-chain wallet (xpub and a node)")
	}
	if ln != nil {
		cfg := lightning.Config{Host: ln.Host, Network: ln.Network, Macaroon: ln.Macaroon, TLSCert: ln.TLSCert}
		if len(cfg.Macaroon) == 0 || len(cfg.TLSCert) == 0 {
			saved, err := lightning.ConfigFromSecrets(store, ln.Host, ln.Network)
			if err != nil {
				return fmt.Errorf("the LND credentials are not set up: %w", err)
			}
			if len(cfg.Macaroon) == 0 {
				cfg.Macaroon = saved.Macaroon
			}
			if len(cfg.TLSCert) == 0 {
				cfg.TLSCert = saved.TLSCert
			}
		}
		if err := checkLightning(ctx, cfg); err != nil {
			return err
		}
	}
	if oc != nil {
		if err := checkOnChain(ctx, oc.Node); err != nil {
			return err
		}
	}
	return nil
}

// checkLightning makes an LND client of cfg and asks it (lightning.Client.Check), which proves
// the address, the certificate and the macaroon and creates nothing.
func checkLightning(ctx context.Context, cfg lightning.Config) error {
	c, err := lightning.New(cfg)
	if err != nil {
		return fmt.Errorf("cannot use this LND: %w", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, backendCheckTimeout)
	defer cancel()
	err = c.Check(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lightning.ErrRefused):
		return fmt.Errorf("LND at %s refused the macaroon (give this LND's invoice.macaroon): %w", cfg.Host, err)
	case errors.Is(err, lightning.ErrUnreachable):
		return unreachable("LND", cfg.Host, "REST port (restlisten in lnd.conf)", err)
	}
	return fmt.Errorf("LND at %s cannot be used: %w", cfg.Host, err)
}

// checkOnChain asks the bitcoin node for its block count with the RPC credentials.
func checkOnChain(ctx context.Context, node onchain.NodeConfig) error {
	if node.Host == "" {
		return errors.New("give the bitcoin node's RPC address (host:port)")
	}
	ctx, cancel := context.WithTimeout(ctx, backendCheckTimeout)
	defer cancel()
	err := onchain.CheckNode(ctx, node)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, onchain.ErrNodeAuth) && node.CookieFile != "":
		return fmt.Errorf("the bitcoin node at %s refused the credentials in the cookie file %s (is it this node's .cookie?): %w", node.Host, node.CookieFile, err)
	case errors.Is(err, onchain.ErrNodeAuth):
		return fmt.Errorf("wrong RPC password (or user name) for the bitcoin node at %s: %w", node.Host, err)
	case errors.Is(err, onchain.ErrNodeUnreachable):
		return unreachable("the bitcoin node", node.Host, "RPC port", err)
	case errors.Is(err, onchain.ErrNodeWantsTLS):
		return fmt.Errorf("the bitcoin node at %s answers over TLS only: give its certificate (btcd's rpc.cert; -btc-cert on the command line) (%w)", node.Host, err)
	}
	return fmt.Errorf("the bitcoin node at %s cannot be used: %w", node.Host, err)
}

// unreachable says in plain words why what (at host) did not answer.
func unreachable(what, host, port string, err error) error {
	var dns *net.DNSError
	var ne net.Error
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	var notTLS tls.RecordHeaderError
	switch {
	case errors.As(err, &dns):
		return fmt.Errorf("cannot find the host of %s (%s): %w", what, host, err)
	case dialRefused(err):
		return fmt.Errorf("nothing is listening at %s: is %s running, and is that its %s? (%w)", host, what, port, err)
	case errors.As(err, &hostname):
		// Go checks the name before the chain: the right certificate at a name it does not
		// list fails so (another host, Docker, a DNS name).
		return fmt.Errorf("%s's certificate is not valid for %s (it names %s): reach it by a name or address the certificate lists, "+
			"or add this one to it (LND: tlsextraip= or tlsextradomain= in lnd.conf, then delete tls.cert and tls.key, restart it and give the new tls.cert; "+
			"btcd: regenerate rpc.cert with this host) (%w)", what, hostname.Host, certNames(hostname.Certificate), err)
	case errors.As(err, &unknownCA), errors.As(err, &verify):
		return fmt.Errorf("%s at %s does not have the TLS certificate given: %w", what, host, err)
	case errors.As(err, &notTLS):
		return fmt.Errorf("%s at %s does not answer over TLS: is that its %s? (%w)", what, host, port, err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%s at %s does not answer: %w", what, host, err)
	}
	return fmt.Errorf("%s at %s cannot be reached: %w", what, host, err)
}

// certNames lists the names and addresses a certificate is valid for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "nothing"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no host"
	}
	return strings.Join(names, ", ")
}
