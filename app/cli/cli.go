// Package cli is Dazaar Vision's command line. Until the desktop UI exists it
// is the whole app: `dazaar-vision feed ...` manages signed feeds and
// `dazaar-vision secrets ...` backs up the secrets they sign with.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/app/version"
)

// Environment variables the command line reads.
const (
	// EnvPassphrase supplies the secrets file's passphrase without a prompt
	// (for scripts and tests).
	EnvPassphrase = "DAZAAR_VISION_PASSPHRASE"
	// EnvBackupPassphrase supplies a backup's passphrase (secrets export and import)
	// without a prompt.
	EnvBackupPassphrase = "DAZAAR_VISION_BACKUP_PASSPHRASE"
	serviceName         = "dazaar-vision"
)

// Run runs the command line with args (without the program name) and returns
// the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, out: stdout, err: stderr}
	gf := flag.NewFlagSet("dazaar-vision", flag.ContinueOnError)
	gf.SetOutput(stderr)
	gf.StringVar(&e.secretsKind, "secrets", "auto", "where secrets live: auto, keyring or file")
	gf.StringVar(&e.secretsFile, "secrets-file", defaultSecretsFile(), "the encrypted secrets file (used when there is no OS keyring, or with -secrets file)")
	gf.StringVar(&e.dataDir, "data-dir", session.DefaultDataDir(), "where streams, watched streams, sales and settings are kept")
	verbose := gf.Bool("v", false, "log debug messages")
	showVersion := gf.Bool("version", false, "print the version and exit")
	gf.Usage = func() { usage(stderr) }
	if err := gf.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "dazaar-vision %s\n", version.String())
		return 0
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	e.log = slog.New(slog.NewTextHandler(logWriter{e}, &slog.HandlerOptions{Level: level}))
	rest := gf.Args()
	if len(rest) == 0 {
		rest = []string{"ui"} // no command: the desktop window (app/cli/ui.go)
	}
	var err error
	switch rest[0] {
	case "feed":
		err = e.feed(rest[1:])
	case "secrets":
		err = e.secrets(rest[1:])
	case "record":
		err = e.record(rest[1:])
	case "export":
		err = e.exportCmd(rest[1:])
	case "live":
		err = e.live(rest[1:])
	case "watch":
		err = e.watch(rest[1:])
	case "streams":
		err = e.streams(rest[1:])
	case "card":
		err = e.card(rest[1:])
	case "ui":
		err = e.ui(rest[1:])
	case "selftest":
		err = e.selftest(rest[1:])
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	case "version":
		fmt.Fprintf(stdout, "dazaar-vision %s\n", version.String())
		return 0
	default:
		fmt.Fprintf(stderr, "dazaar-vision: unknown command %q\n\n", rest[0])
		usage(stderr)
		return 2
	}
	if e.store != nil {
		e.store.Close()
	}
	if err != nil {
		var help helpText
		if errors.As(err, &help) {
			fmt.Fprint(stdout, string(help))
			return 0
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// The user interrupted (Ctrl-C) before the command got going: not a failure to
			// explain, and 130 is what a shell reports for SIGINT.
			fmt.Fprintln(stderr, "dazaar-vision: interrupted")
			return 130
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "dazaar-vision: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "dazaar-vision: %v\n", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// helpText is help the user asked for (`live -h`, `card help`): Run prints it to stdout and
// exits 0.
type helpText string

func (h helpText) Error() string { return string(h) }

// groupHelp is the help of a group of subcommands (feed, card, secrets): its lines of the
// usage text.
func groupHelp(group string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: dazaar-vision %s SUBCOMMAND ...\n\n", group)
	in := false
	for _, l := range strings.Split(usageText, "\n") {
		if strings.HasPrefix(l, "  "+group+" ") {
			in = true
		} else if !strings.HasPrefix(l, "   ") {
			in = false // a continuation line is indented further than a command's
		}
		if in {
			b.WriteString(l + "\n")
		}
	}
	return helpText(b.String())
}

func usage(w io.Writer) { fmt.Fprint(w, usageText) }

const usageText = `Dazaar Vision: paid peer-to-peer live video.

Usage: dazaar-vision [-data-dir DIR] [-secrets auto|keyring|file] [-secrets-file PATH] [-v] COMMAND ...
       dazaar-vision --version    (or: dazaar-vision version)

Desktop app:
  ui [CARD]                   open the window (the default with no command; needs a display)

Live streams:
  live [-price "1000 sats per hour"|free] [-lnd-dir DIR | -lnd-host H -lnd-macaroon F -lnd-cert F]
       [-xpub KEY -btc-node HOST:PORT ...] [-video camera|screen|test|none] [-audio mic|test|none]
       [-preset low|medium|high] [-name N] [-description D] [-resume ID]
                              go live: prints the card to share, then live figures
  watch [-minutes N | -sats N] [-method lightning|onchain] [-o OUT.webm] [-duration D] CARD
                              find the seller, show the terms, pay (invoice as text and QR),
                              then play; type buy N, pause, resume, live, start or quit
  streams                     my streams (resumable) and the streams I watched
  card inspect [-json] CARD|FILE|-   a card's stream, seller, addresses and terms

Feeds (signed append-only logs in Hypercore v10 format):
  feed create [-mode compat|manifest] [-max-block BYTES] DIR
                              make a feed; its signing key goes to the secret store
  feed append [-sync-point] [-lines] DIR FILE...
                              append each FILE as one block under one signature
                              (- reads stdin; -lines makes each line a block)
  feed info [-json] DIR       key, discovery key, length, byte length, tree hash, signature
  feed verify DIR             re-hash every block and check the signature
  feed get [-raw] DIR INDEX   a block and its proof (JSON), or only its bytes with -raw

Media:
  record [-preset low|medium|high] [-duration D] [-test-devices] [-description TEXT] DIR
                              capture camera and microphone (the test ones when none
                              exist), encode VP8 + Opus and append to a new feed in DIR
  export [-from D] [-to D] DIR OUT.webm|-
                              write the stream (or part of it) to a WebM file
                              (- writes it to stdout: export DIR - | mpv -)
  selftest                    check this install: VP8 on the test camera, a feed over libp2p TCP

Secrets (feed signing keys, the network identity, Lightning credentials):
  secrets where               which store is in use and why
  secrets export FILE         write an encrypted backup of every secret
  secrets import FILE         restore a backup into the store in use

The secrets file's passphrase is read from $DAZAAR_VISION_PASSPHRASE, a backup's from
$DAZAAR_VISION_BACKUP_PASSPHRASE; either is asked for when unset (typed without echo).
`

func defaultSecretsFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "dazaar-vision", "secrets.enc")
}

type env struct {
	ctx         context.Context
	stdin       io.Reader
	out, err    io.Writer
	log         *slog.Logger
	secretsKind string
	secretsFile string
	dataDir     string
	store       *secrets.Store
	// status is the running status line of live or watch, which log messages end first.
	status atomic.Pointer[statusLine]
}

// openSecrets opens the secret store on first use, asking for the secrets file's passphrase
// on the terminal (or taking it from the environment).
func (e *env) openSecrets() (*secrets.Store, error) {
	if e.store != nil {
		return e.store, nil
	}
	s, err := e.openSecretsWith(e.ctx, e.passphrase)
	if err != nil {
		return nil, err
	}
	e.log.Debug("secret store", "backend", s.Description(), "why", s.Reason())
	e.store = s
	return s, nil
}

func (e *env) secrets(args []string) error {
	if len(args) == 0 {
		return usagef("secrets needs a subcommand: where, export or import")
	}
	what, n := "FILE", 1
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return groupHelp("secrets")
	case "where":
		what, n = "", 0
	case "export", "import":
	default:
		return usagef("unknown secrets subcommand %q", args[0])
	}
	// The arguments are checked before the store is opened: a mistyped command asks for no
	// passphrase.
	rest, err := parse(e.flags("secrets "+args[0]), args[1:], n, n, what)
	if err != nil {
		return err
	}
	var blob []byte
	if args[0] == "export" {
		// An earlier backup is never replaced unasked: it may hold secrets this store no
		// longer has (an identity, a stream's key), under another passphrase.
		if _, err := os.Lstat(rest[0]); err == nil {
			return fmt.Errorf("%s already exists: back up to a new file name (an earlier backup may hold what this store no longer has)", rest[0])
		}
	}
	if args[0] == "import" {
		// Read and checked first: a file that is not a backup asks for no passphrase.
		if blob, err = secrets.ReadBackupFile(rest[0]); err != nil {
			return fmt.Errorf("cannot read the backup: %w", err)
		}
	}
	s, err := e.openSecrets()
	if err != nil {
		return err
	}
	switch args[0] {
	case "where":
		fmt.Fprintf(e.out, "%s\n(%s)\n", s.Description(), s.Reason())
		return nil
	case "export":
		p, err := e.backupPassphrase(true)
		if err != nil {
			return err
		}
		blob, err := s.Export(p, secrets.KDFParams{})
		if err != nil {
			return fmt.Errorf("cannot export the secrets: %w", err)
		}
		if err := secrets.WriteBackupFile(rest[0], blob); err != nil {
			return fmt.Errorf("cannot write the backup: %w", err)
		}
		names, _ := s.List()
		fmt.Fprintf(e.out, "backed up %d secrets to %s (encrypted with the passphrase)\n", len(names), rest[0])
		return nil
	}
	p, err := e.backupPassphrase(false)
	if err != nil {
		return err
	}
	names, err := s.Import(blob, p)
	if errors.Is(err, secrets.ErrWrongPassphrase) {
		return errors.New("wrong passphrase for this backup: nothing was restored")
	}
	if err != nil {
		return fmt.Errorf("cannot restore the backup: %w", err)
	}
	fmt.Fprintf(e.out, "restored %d secrets\n", len(names))
	return nil
}
