package cli

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/stream/feed"
)

func (e *env) feed(args []string) error {
	if len(args) == 0 {
		return usagef("feed needs a subcommand: create, append, info, verify or get")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return groupHelp("feed")
	case "create":
		return e.feedCreate(args[1:])
	case "append":
		return e.feedAppend(args[1:])
	case "info":
		return e.feedInfo(args[1:])
	case "verify":
		return e.feedVerify(args[1:])
	case "get":
		return e.feedGet(args[1:])
	}
	return usagef("unknown feed subcommand %q", args[0])
}

// flags makes the flag set of the command name as the user types it after the program name
// ("live", "feed create", "card inspect"): parse names it in usage messages and help.
func (e *env) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.err)
	return fs
}

// parse reads a command's flags wherever they stand, before or after its arguments (`watch
// CARD -o -` as well as `watch -o - CARD`; after "--" everything is an argument), and checks
// that there are at least min arguments and at most max (max < 0: no limit), so no word the
// user typed is silently ignored. what is the command's argument line, shown in its usage.
//
// -h or -help returns a helpText (the usage line and the flags) that Run prints to stdout,
// exiting 0; a flag error prints the usage to fs's output, and the error is returned.
func parse(fs *flag.FlagSet, args []string, min, max int, what string) ([]string, error) {
	line := strings.TrimSpace(fs.Name() + " " + what)
	out := fs.Output()
	var buf bytes.Buffer
	fs.SetOutput(&buf) // help goes to stdout, errors to out: decided once Parse returns
	defer fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: dazaar-vision %s\n", line)
		fs.PrintDefaults()
	}
	var rest []string
	for {
		buf.Reset()
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpText(buf.String())
			}
			// The usage, then the error once (Run prints it): the flag package's own copy of
			// the error, first in buf, is left out.
			fs.SetOutput(out)
			fs.Usage()
			return nil, usagef("%v", err)
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		if used := len(args) - len(left); used > 0 && args[used-1] == "--" {
			rest = append(rest, left...) // the terminator: no flags after it
			break
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
	if len(rest) < min || (max >= 0 && len(rest) > max) {
		if max >= 0 && len(rest) > max {
			return nil, usagef("unexpected %q; usage: %s", rest[max], line)
		}
		return nil, usagef("usage: %s", line)
	}
	return rest, nil
}

func (e *env) feedCreate(args []string) error {
	fs := e.flags("feed create")
	mode := fs.String("mode", "compat", "key mode: compat (Hypercore v10) or manifest (v11)")
	maxBlock := fs.Int("max-block", feed.DefaultMaxBlockSize, "largest block in bytes")
	rest, err := parse(fs, args, 1, 1, "[-mode compat|manifest] [-max-block BYTES] DIR")
	if err != nil {
		return err
	}
	if *maxBlock < 1 || *maxBlock > feed.MaxBlockSizeLimit {
		return usagef("-max-block is the largest block in bytes, 1 to %d (default %d), not %d", feed.MaxBlockSizeLimit, feed.DefaultMaxBlockSize, *maxBlock)
	}
	var m feed.Mode
	switch *mode {
	case "compat":
		m = feed.Compat
	case "manifest":
		m = feed.Manifest
	default:
		return usagef("-mode is compat or manifest, not %q", *mode)
	}
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		return err
	}
	store, err := e.openSecrets()
	if err != nil {
		return err
	}
	f, err := feed.Create(rest[0], feed.Options{KeyPair: &kp, Mode: m, MaxBlockSize: *maxBlock, Logger: e.log})
	if err != nil {
		return fmt.Errorf("cannot create the feed: %w", err)
	}
	defer f.Close()
	dk := f.DiscoveryKey()
	if err := store.Set(secrets.FeedSeedName(hex.EncodeToString(dk[:])), seed); err != nil {
		return fmt.Errorf("the feed was made but its signing key could not be stored (%w); it cannot be appended to", err)
	}
	key := f.Key()
	fmt.Fprintf(e.out, "created feed in %s\nkey:           %x\ndiscovery key: %x\nsigning key stored in: %s\n", rest[0], key, dk, store.Description())
	return nil
}

// openWritable opens a feed with its signing key from the secret store, with the given
// durability (see feed.Durability).
func (e *env) openWritable(dir string, dur feed.Durability) (*feed.Feed, error) {
	ro, err := feed.Open(dir, feed.Options{Logger: e.log, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("cannot open the feed: %w", err)
	}
	dk := ro.DiscoveryKey()
	ro.Close()
	store, err := e.openSecrets()
	if err != nil {
		return nil, err
	}
	seed, err := store.Get(secrets.FeedSeedName(hex.EncodeToString(dk[:])))
	if err != nil {
		if errors.Is(err, secrets.ErrNotFound) {
			return nil, fmt.Errorf("this feed's signing key is not in %s: only its creator can append (restore a backup with `secrets import`)", store.Description())
		}
		return nil, fmt.Errorf("cannot read the signing key: %w", err)
	}
	kp, err := feed.KeyPairFromSeed(seed)
	if err != nil {
		return nil, err
	}
	f, err := feed.Open(dir, feed.Options{KeyPair: &kp, Logger: e.log, Durability: dur})
	if err != nil {
		return nil, fmt.Errorf("cannot open the feed: %w", err)
	}
	return f, nil
}

func (e *env) feedAppend(args []string) error {
	fs := e.flags("feed append")
	syncPoint := fs.Bool("sync-point", false, "mark the first block as a sync point")
	lines := fs.Bool("lines", false, "each line of input is one block (without its newline)")
	rest, err := parse(fs, args, 2, -1, "[-sync-point] [-lines] DIR FILE... (- for stdin)")
	if err != nil {
		return err
	}
	f, err := e.openWritable(rest[0], feed.SyncBeforeShare)
	if err != nil {
		return err
	}
	defer f.Close()
	var blocks [][]byte
	for _, name := range rest[1:] {
		var r io.Reader
		if name == "-" {
			r = e.stdin
		} else {
			file, err := os.Open(name)
			if err != nil {
				return fmt.Errorf("cannot read %s: %w", name, err)
			}
			defer file.Close()
			r = file
		}
		max := f.MaxBlockSize()
		if *lines {
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), max+1)
			for sc.Scan() {
				blocks = append(blocks, append([]byte(nil), sc.Bytes()...))
			}
			if err := sc.Err(); err != nil {
				return fmt.Errorf("cannot read %s: %w (a line over %d bytes?)", name, err, max)
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", name, err)
		}
		if len(b) > max {
			return fmt.Errorf("%s is larger than the feed's %d-byte block limit: nothing appended", name, max)
		}
		blocks = append(blocks, b)
	}
	var h feed.Head
	if *syncPoint {
		h, err = f.AppendSync(blocks...)
	} else {
		h, err = f.Append(blocks...)
	}
	if err != nil {
		return fmt.Errorf("cannot append: %w", err)
	}
	fmt.Fprintf(e.out, "appended %d blocks; length %d, %d bytes\n", len(blocks), h.Length, h.ByteLength)
	return nil
}

type infoJSON struct {
	Dir          string  `json:"dir"`
	Key          string  `json:"key"`
	DiscoveryKey string  `json:"discoveryKey"`
	Mode         string  `json:"mode"`
	Writable     bool    `json:"writable"`
	Length       uint64  `json:"length"`
	ByteLength   uint64  `json:"byteLength"`
	Fork         uint64  `json:"fork"`
	TreeHash     string  `json:"treeHash"`
	Signature    string  `json:"signature"`
	Stored       uint64  `json:"storedBlocks"`
	SyncPoint    *uint64 `json:"syncPoint,omitempty"`
}

func (e *env) feedInfo(args []string) error {
	fs := e.flags("feed info")
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parse(fs, args, 1, 1, "[-json] DIR")
	if err != nil {
		return err
	}
	f, err := feed.Open(rest[0], feed.Options{Logger: e.log, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("cannot open the feed: %w", err)
	}
	defer f.Close()
	h := f.Head()
	key, dk := f.Key(), f.DiscoveryKey()
	mode := "unknown (no upgrade verified yet)"
	if m, ok := f.Mode(); ok {
		mode = m.String()
	}
	info := infoJSON{Dir: rest[0], Key: hex.EncodeToString(key[:]), DiscoveryKey: hex.EncodeToString(dk[:]), Mode: mode,
		Length: h.Length, ByteLength: h.ByteLength, Fork: h.Fork, TreeHash: hex.EncodeToString(h.TreeHash[:]),
		Signature: hex.EncodeToString(h.Signature), Stored: f.Stored()}
	if h.HasSyncPoint {
		info.SyncPoint = &h.SyncPoint
	}
	if *asJSON {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	fmt.Fprintf(e.out, "key:           %s\ndiscovery key: %s\nmode:          %s\nlength:        %d\nbyte length:   %d\nfork:          %d\ntree hash:     %s\nsignature:     %s\nstored blocks: %d\n",
		info.Key, info.DiscoveryKey, info.Mode, info.Length, info.ByteLength, info.Fork, info.TreeHash, info.Signature, info.Stored)
	if info.SyncPoint != nil {
		fmt.Fprintf(e.out, "sync point:    %d\n", *info.SyncPoint)
	}
	return nil
}

func (e *env) feedVerify(args []string) error {
	rest, err := parse(e.flags("feed verify"), args, 1, 1, "DIR")
	if err != nil {
		return err
	}
	f, err := feed.Open(rest[0], feed.Options{Logger: e.log, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("cannot open the feed: %w", err)
	}
	defer f.Close()
	n, err := f.VerifyAll()
	if err != nil {
		return fmt.Errorf("the feed does NOT verify: %w", err)
	}
	fmt.Fprintf(e.out, "ok: signature valid for length %d; %d stored blocks match the tree\n", f.Length(), n)
	return nil
}

type nodeJSON struct {
	Index uint64 `json:"index"`
	Size  uint64 `json:"size"`
	Hash  string `json:"hash"`
}

func nodesJSON(ns []feed.Node) []nodeJSON {
	out := make([]nodeJSON, 0, len(ns))
	for _, n := range ns {
		out = append(out, nodeJSON{n.Index, n.Size, hex.EncodeToString(n.Hash[:])})
	}
	return out
}

func (e *env) feedGet(args []string) error {
	fs := e.flags("feed get")
	raw := fs.Bool("raw", false, "write only the block's bytes")
	rest, err := parse(fs, args, 2, 2, "[-raw] DIR INDEX")
	if err != nil {
		return err
	}
	i, err := strconv.ParseUint(rest[1], 10, 64)
	if err != nil {
		return usagef("INDEX must be a block number, not %q", rest[1])
	}
	f, err := feed.Open(rest[0], feed.Options{Logger: e.log, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("cannot open the feed: %w", err)
	}
	defer f.Close()
	if i >= f.Length() {
		return fmt.Errorf("block %d does not exist: the feed has %d blocks", i, f.Length())
	}
	if *raw {
		b, err := f.Get(i)
		if err != nil {
			return err
		}
		_, err = e.out.Write(b)
		return err
	}
	// The proof a fresh reader needs: the block, its path and the signed upgrade.
	p, err := f.Proof(feed.Request{Block: &feed.BlockRequest{Index: i}, Upgrade: &feed.UpgradeRequest{Start: 0, Length: f.Length()}, Manifest: true})
	if err != nil {
		return fmt.Errorf("cannot prove block %d: %w", i, err)
	}
	out := map[string]any{
		"index": i, "size": len(p.Block.Value), "fork": p.Fork,
		"value": hex.EncodeToString(p.Block.Value),
		"nodes": nodesJSON(p.Block.Nodes),
		"upgrade": map[string]any{
			"start": p.Upgrade.Start, "length": p.Upgrade.Length,
			"nodes": nodesJSON(p.Upgrade.Nodes), "additionalNodes": nodesJSON(p.Upgrade.AdditionalNodes),
			"signature": hex.EncodeToString(p.Upgrade.Signature),
		},
	}
	if p.Manifest != nil {
		out["manifest"] = hex.EncodeToString(p.Manifest)
	}
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
