// Package ledger is the access ledger: per (stream, viewer), payments become milliseconds of
// access, and access burns as media time is delivered to that viewer (catching up on an hour of
// history costs an hour, a pause costs nothing). Credits are keyed by payment ID, so replaying a
// payment never credits it twice; they are written and synced before Credit returns. Consumption
// is written as an absolute total whenever a viewer's unwritten consumption reaches
// PersistEveryMillis (1 s of media): a plain append handed to the OS, no fsync, so a killed or
// crashed process gives a viewer back less than 1 s of media. Flush (the owner calls it about
// once a second) writes every account's remainder and syncs, so a power loss gives back what was
// delivered since the last Flush, at most one Flush interval's worth of delivery. Flush syncs
// outside the lock Consume takes: a slow disk delays the next Flush, never a viewer's Consume.
package ledger

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/filecoin-project/go-clock"

	"github.com/dazaarvision/dazaar-vision/internal/filelock"
	"github.com/dazaarvision/dazaar-vision/wallet/internal/journal"
)

// Key names one viewer's account for one stream. Both parts are opaque to the ledger.
type Key struct {
	Stream string `json:"s"`
	Viewer string `json:"v"`
}

// MaxCreditMillis caps the access one credit grants (about 1 000 years).
const MaxCreditMillis = 1000 * 366 * 24 * 3600 * 1000

// MaxIDLen caps stream IDs, viewer IDs and credit IDs.
const MaxIDLen = 256

func (k Key) validate() error {
	if k.Stream == "" || k.Viewer == "" {
		return errors.New("ledger: empty stream or viewer")
	}
	if len(k.Stream) > MaxIDLen || len(k.Viewer) > MaxIDLen {
		return errors.New("ledger: stream or viewer ID too long")
	}
	return nil
}

// State is where a payment stands.
type State uint8

// Credit states. Provisional credit (an unconfirmed on-chain payment) counts towards access until
// it is settled or revoked; revoked credit counts for nothing.
const (
	Provisional State = iota + 1
	Settled
	Revoked
)

func (s State) String() string {
	switch s {
	case Provisional:
		return "provisional"
	case Settled:
		return "settled"
	case Revoked:
		return "revoked"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Credit is one payment's contribution to an account.
type Credit struct {
	ID     string `json:"id"` // unique per payment, e.g. "ln:<payment hash>" or "btc:<txid>:<vout>"
	Msat   uint64 `json:"msat"`
	Millis uint64 `json:"ms"` // media time the payment buys
	State  State  `json:"st"`
	Height int32  `json:"h,omitempty"`    // for on-chain payments: the block that confirmed it
	Note   string `json:"note,omitempty"` // why the state changed, for people
	// At is when the payment was first recorded (a later state keeps it); SetCredit sets it
	// when the caller leaves it zero.
	At time.Time `json:"at,omitzero"`
}

// Balance is an account's standing.
type Balance struct {
	GrantedMillis     uint64 // provisional + settled
	ProvisionalMillis uint64
	ConsumedMillis    uint64
	SettledMsat       uint64
	Pending           int // provisional credits: payments seen, not yet confirmed (they may grant nothing)
}

// Remaining is the access left; negative when revoked credit had already been used.
// It saturates at the largest Duration (about 292 years) instead of overflowing.
func (b Balance) Remaining() time.Duration {
	const maxMillis = uint64(math.MaxInt64 / int64(time.Millisecond))
	if b.GrantedMillis >= b.ConsumedMillis {
		return time.Duration(min(b.GrantedMillis-b.ConsumedMillis, maxMillis)) * time.Millisecond
	}
	return -time.Duration(min(b.ConsumedMillis-b.GrantedMillis, maxMillis)) * time.Millisecond
}

type account struct {
	credits map[string]Credit
	bal     Balance
	written uint64 // ConsumedMillis last handed to the OS; less than bal.ConsumedMillis means dirty
}

// PersistEveryMillis is how much media time a viewer may consume before Consume writes the
// account's total: a process killed at any moment gives each viewer back less than this.
const PersistEveryMillis = 1000

type record struct {
	Op       string  `json:"op"` // "credit", "consumed", "meta"
	Key      Key     `json:"k,omitzero"`
	Credit   *Credit `json:"c,omitempty"`
	Consumed uint64  `json:"n,omitempty"`
	Name     string  `json:"name,omitempty"`
	Value    string  `json:"val,omitempty"`
}

// Ledger is safe for concurrent use.
//
// Lock order: syncMu, then mu. mu guards the state and the writer; Flush and SetMeta sync the
// file holding only syncMu, so that Consume (every paid viewer's send loop) never waits for the
// disk. Every path that closes or replaces f (Close, compaction) holds both, so a sync never
// runs on a closed file. SetCredit syncs under mu (payments are rare; its changed/At logic
// stays atomic).
type Ledger struct {
	path string
	log  *slog.Logger

	lock *filelock.Lock // path + ".lock", held from Open to Close

	syncMu sync.Mutex // serialises syncs outside mu and the closing or replacing of f; taken before mu

	mu       sync.Mutex
	f        *os.File
	w        *bufio.Writer
	accounts map[Key]*account
	meta     map[string]string
	closed   bool
	records  int    // records in the file, to compact it while running once most are stale
	seq      uint64 // records appended since Open
	synced   uint64 // seq up to which records are synced to disk
	clock    clock.Clock
	syncFile func(*os.File) error // (*os.File).Sync; tests slow it down
}

// Option configures Open.
type Option func(*Ledger)

// WithClock makes the ledger read the time (when a credit was first seen, the flush ticker)
// from c instead of the system clock.
func WithClock(c clock.Clock) Option { return func(l *Ledger) { l.clock = c } }

// ErrInUse says another open ledger (another process, or another Open in this one) holds the
// file: two writers would interleave their records and each cut the other's last one off as torn.
var ErrInUse = errors.New("the sales ledger is in use by another program (or already open here)")

// Open loads the ledger at path, creating it if needed, and compacts it when it has grown. It
// takes a lock on path + ".lock" until Close: ErrInUse when another holds it.
func Open(path string, log *slog.Logger, opts ...Option) (*Ledger, error) {
	if log == nil {
		log = slog.Default()
	}
	l := &Ledger{path: path, log: log, accounts: map[Key]*account{}, meta: map[string]string{}, clock: clock.New(),
		syncFile: (*os.File).Sync}
	for _, o := range opts {
		o(l)
	}
	lock, err := filelock.Take(path + ".lock")
	if errors.Is(err, filelock.ErrLocked) {
		return nil, fmt.Errorf("ledger: %s: %w", path, ErrInUse)
	} else if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	l.lock = lock
	opened := false
	defer func() {
		if !opened {
			lock.Unlock()
		}
	}()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	records := 0
	end, err := journal.ReadFrames(f, func(b []byte) error {
		records++
		return l.applyRecord(b)
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ledger: reading %s: %w", path, err)
	}
	st, _ := f.Stat()
	if st != nil && st.Size() > end {
		log.Warn("ledger: dropping a record cut short by a crash", "file", path, "bytes", st.Size()-end)
		if err := f.Truncate(end); err != nil {
			f.Close()
			return nil, fmt.Errorf("ledger: truncating torn record: %w", err)
		}
	}
	f.Close()
	l.records = records
	if records > l.compactAt() {
		if err := l.compact(); err != nil {
			return nil, err
		}
	}
	if err := l.openAppend(); err != nil {
		return nil, err
	}
	opened = true
	return l, nil
}

func (l *Ledger) openAppend() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: open %s: %w", l.path, err)
	}
	l.f, l.w = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

// compactAt is the record count above which the file is rewritten with only the live state:
// more than twice the live records (one per credit, meta entry and account's consumption), so
// rewriting costs O(1) amortised per record written. Locked.
func (l *Ledger) compactAt() int {
	live := len(l.meta)
	for _, a := range l.accounts {
		live += len(a.credits) + 1
	}
	return 2*live + 1024
}

// maybeCompactLocked rewrites the file once it holds mostly superseded records (consumption is
// rewritten every Flush, so a seller with 1 000 viewers would otherwise add ~0.5 GB an hour).
// A failure leaves the old file in use. Holds syncMu and mu (it replaces f).
func (l *Ledger) maybeCompactLocked() {
	if l.records <= l.compactAt() {
		return
	}
	if err := l.w.Flush(); err != nil {
		l.log.Warn("ledger: not compacting: writing the ledger failed", "err", err)
		return
	}
	if err := l.f.Close(); err != nil {
		l.log.Warn("ledger: closing before compaction", "err", err)
	}
	if err := l.compact(); err != nil {
		l.log.Error("ledger: compacting the ledger failed; it keeps growing until the next try", "err", err)
	} else {
		l.synced = l.seq // the rewritten file holds the whole state, synced
	}
	if err := l.openAppend(); err != nil {
		// Nothing can be written any more: later writes report the closed file.
		l.log.Error("ledger: reopening after compaction failed", "err", err)
	}
}

// applyRecord decodes one stored record and applies it (Open).
func (l *Ledger) applyRecord(b []byte) error {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	return l.apply(r)
}

func (l *Ledger) apply(r record) error {
	switch r.Op {
	case "credit":
		if r.Credit == nil || r.Key.validate() != nil || r.Credit.check() != nil {
			return errors.New("bad credit record")
		}
		c := *r.Credit
		c.Millis = min(c.Millis, MaxCreditMillis) // as SetCredit caps it: sums of credits cannot overflow
		l.setCredit(r.Key, c)
	case "consumed":
		if r.Key.validate() != nil {
			return errors.New("bad consumed record")
		}
		a := l.account(r.Key)
		a.bal.ConsumedMillis, a.written = r.Consumed, r.Consumed
	case "meta":
		if len(r.Name) > MaxIDLen || len(r.Value) > maxMetaValue {
			return errors.New("bad meta record") // SetMeta stores none: compaction could not write it back
		}
		l.meta[r.Name] = r.Value
	default:
		return fmt.Errorf("unknown record %q", r.Op)
	}
	return nil
}

func (l *Ledger) account(k Key) *account {
	a := l.accounts[k]
	if a == nil {
		a = &account{credits: map[string]Credit{}}
		l.accounts[k] = a
	}
	return a
}

func (l *Ledger) setCredit(k Key, c Credit) {
	a := l.account(k)
	if old, ok := a.credits[c.ID]; ok {
		a.bal.sub(old)
	}
	a.credits[c.ID] = c
	a.bal.add(c)
}

func (b *Balance) add(c Credit) {
	switch c.State {
	case Provisional:
		b.GrantedMillis += c.Millis
		b.ProvisionalMillis += c.Millis
		b.Pending++
	case Settled:
		b.GrantedMillis += c.Millis
		b.SettledMsat += c.Msat
	}
}

func (b *Balance) sub(c Credit) {
	switch c.State {
	case Provisional:
		b.GrantedMillis -= c.Millis
		b.ProvisionalMillis -= c.Millis
		b.Pending--
	case Settled:
		b.GrantedMillis -= c.Millis
		b.SettledMsat -= c.Msat
	}
}

// ErrCorrupt means the ledger file is damaged (not merely cut short by a crash).
var ErrCorrupt = journal.ErrCorrupt

// ErrClosed is returned after Close.
var ErrClosed = errors.New("ledger: closed")

// SetCredit records payment c for k and syncs it to disk. Recording the same credit again is a
// no-op (changed is false); a new state for a known ID (provisional → settled, or revoked)
// replaces the old one, so a payment always counts once.
func (l *Ledger) SetCredit(k Key, c Credit) (changed bool, err error) {
	if err := k.validate(); err != nil {
		return false, err
	}
	if err := c.check(); err != nil {
		return false, err
	}
	// One payment buys at most MaxCreditMillis, so that sums of credits cannot overflow.
	c.Millis = min(c.Millis, MaxCreditMillis)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, ErrClosed
	}
	if a := l.accounts[k]; a != nil {
		if old, ok := a.credits[c.ID]; ok {
			if old.Msat == c.Msat && old.Millis == c.Millis && old.State == c.State && old.Height == c.Height {
				return false, nil
			}
			if !old.At.IsZero() {
				c.At = old.At // when it was first seen, whatever its state now
			}
		}
	}
	if c.At.IsZero() {
		c.At = l.clock.Now().UTC().Round(time.Millisecond)
	}
	if err := l.writeLocked(record{Op: "credit", Key: k, Credit: &c}, true); err != nil {
		return false, err
	}
	l.setCredit(k, c)
	return true, nil
}

// check refuses a credit SetCredit does not store: Open refuses a file holding one.
func (c Credit) check() error {
	if c.ID == "" || len(c.ID) > MaxIDLen || len(c.Note) > 1024 {
		return errors.New("ledger: credit needs an ID of at most 256 bytes")
	}
	if c.State < Provisional || c.State > Revoked {
		return fmt.Errorf("ledger: bad credit state %d", c.State)
	}
	return nil
}

// Credit returns the stored credit with id for k.
func (l *Ledger) Credit(k Key, id string) (Credit, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.accounts[k]
	if a == nil {
		return Credit{}, false
	}
	c, ok := a.credits[id]
	return c, ok
}

// Consume burns ms milliseconds of delivered media from k's account and returns what is left.
// Once the account's unwritten consumption reaches PersistEveryMillis it appends the total to
// the file (a write the OS keeps if the process dies, not synced; Flush syncs). If that write
// fails, the consumption stays counted in memory, Flush tries again, and the error is returned
// with the remaining access.
func (l *Ledger) Consume(k Key, ms uint64) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	a := l.accounts[k]
	if a == nil {
		if err := k.validate(); err != nil {
			return 0, err
		}
		a = l.account(k)
	}
	a.bal.ConsumedMillis += ms
	if a.bal.ConsumedMillis-a.written >= PersistEveryMillis {
		if err := l.writeConsumedLocked(k, a); err != nil {
			return a.bal.Remaining(), err
		}
		if err := l.w.Flush(); err != nil {
			return a.bal.Remaining(), fmt.Errorf("ledger: write: %w", err)
		}
	}
	return a.bal.Remaining(), nil
}

// writeConsumedLocked buffers k's consumption total. Locked.
func (l *Ledger) writeConsumedLocked(k Key, a *account) error {
	if err := l.writeLocked(record{Op: "consumed", Key: k, Consumed: a.bal.ConsumedMillis}, false); err != nil {
		return err
	}
	a.written = a.bal.ConsumedMillis
	return nil
}

// Balance returns k's standing.
func (l *Ledger) Balance(k Key) Balance {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.accounts[k]; a != nil {
		return a.bal
	}
	return Balance{}
}

// Remaining is k's access left (never negative).
func (l *Ledger) Remaining(k Key) time.Duration {
	r := l.Balance(k).Remaining()
	if r < 0 {
		return 0
	}
	return r
}

// Credits lists k's credits ordered by ID.
func (l *Ledger) Credits(k Key) []Credit {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.accounts[k]
	if a == nil {
		return nil
	}
	out := make([]Credit, 0, len(a.credits))
	for _, c := range a.credits {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Meta returns a stored value (for example a Lightning subscription's resume index).
func (l *Ledger) Meta(name string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.meta[name]
	return v, ok
}

// MetaPrefixed returns the stored values whose names start with prefix, by name.
func (l *Ledger) MetaPrefixed(prefix string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for name, v := range l.meta {
		if strings.HasPrefix(name, prefix) {
			out[name] = v
		}
	}
	return out
}

// maxMetaValue caps a meta value.
const maxMetaValue = 4096

// SetMeta stores a value durably: it is synced to disk when SetMeta returns, and Meta returns it
// from then on. The sync runs outside the lock Consume takes (the seller saves meta values every
// minute or so).
func (l *Ledger) SetMeta(name, value string) error {
	if len(name) > MaxIDLen || len(value) > maxMetaValue {
		return errors.New("ledger: meta entry too long")
	}
	l.syncMu.Lock() // also keeps other SetMeta calls out until this value is in l.meta
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if v, ok := l.meta[name]; ok && v == value {
		l.mu.Unlock()
		return nil
	}
	err := l.writeLocked(record{Op: "meta", Name: name, Value: value}, false)
	if err == nil {
		if err = l.w.Flush(); err != nil {
			err = fmt.Errorf("ledger: write: %w", err)
		}
	}
	upTo, f := l.seq, l.f
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if err := l.syncUnlocked(f, upTo); err != nil {
		return err
	}
	l.mu.Lock()
	l.meta[name] = value
	l.mu.Unlock()
	return nil
}

// syncUnlocked syncs f, which holds the records up to seq upTo, without holding mu, so Consume
// goes on meanwhile; records written during the sync stay unsynced. Holds syncMu (which keeps f
// open: Close and compaction take it before closing or replacing f), not mu.
func (l *Ledger) syncUnlocked(f *os.File, upTo uint64) error {
	if err := l.syncFile(f); err != nil {
		return fmt.Errorf("ledger: sync: %w", err)
	}
	l.mu.Lock()
	l.synced = max(l.synced, upTo)
	l.mu.Unlock()
	return nil
}

// Flush writes consumption since the last Flush and syncs the file. The sync runs outside the
// lock Consume takes, so viewers' sending does not wait for the disk; records written meanwhile
// are synced by the next Flush.
func (l *Ledger) Flush() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	upTo, err := l.writePendingLocked()
	f := l.f
	l.mu.Unlock()
	if err != nil || upTo == 0 {
		return err
	}
	if err := l.syncUnlocked(f, upTo); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeCompactLocked()
	return nil
}

// writePendingLocked writes every account's unwritten consumption and hands the writer's buffer
// to the OS; upTo is the seq a sync now would cover, 0 when everything is synced already. Locked.
func (l *Ledger) writePendingLocked() (upTo uint64, err error) {
	for k, a := range l.accounts {
		if a.written == a.bal.ConsumedMillis {
			continue
		}
		if err := l.writeConsumedLocked(k, a); err != nil {
			return 0, err
		}
	}
	if l.seq == l.synced {
		return 0, nil
	}
	if err := l.w.Flush(); err != nil {
		return 0, fmt.Errorf("ledger: write: %w", err)
	}
	return l.seq, nil
}

// flushLocked is Flush for Close: it syncs under mu. Holds syncMu and mu.
func (l *Ledger) flushLocked() error {
	upTo, err := l.writePendingLocked()
	if err != nil || upTo == 0 {
		return err
	}
	if err := l.syncFile(l.f); err != nil {
		return fmt.Errorf("ledger: sync: %w", err)
	}
	l.synced = upTo
	l.maybeCompactLocked()
	return nil
}

func (l *Ledger) writeLocked(r record, sync bool) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := journal.AppendFrame(l.w, b); err != nil {
		return fmt.Errorf("ledger: write: %w", err)
	}
	l.records++
	l.seq++
	if !sync {
		return nil
	}
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("ledger: write: %w", err)
	}
	if err := l.syncFile(l.f); err != nil {
		return fmt.Errorf("ledger: sync: %w", err)
	}
	l.synced = l.seq
	return nil
}

// Run flushes consumption every interval until ctx ends; the caller owns the goroutine.
func (l *Ledger) Run(ctx context.Context, interval time.Duration) {
	t := l.clock.Ticker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Flush(); err != nil && !errors.Is(err, ErrClosed) {
				l.log.Error("ledger: saving consumed time failed", "err", err)
			}
		}
	}
}

// Close flushes and closes the file (after any Flush's sync under way).
func (l *Ledger) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	err := l.flushLocked()
	if err2 := l.f.Close(); err == nil {
		err = err2
	}
	l.lock.Unlock() // after the last write: the next owner reads everything
	l.closed = true
	return err
}

func (l *Ledger) compact() error {
	n := 0
	err := journal.WriteAtomically(l.path, func(w io.Writer) (err error) {
		n, err = l.writeState(w)
		return err
	})
	if err == nil {
		l.records = n
	}
	return err
}

// writeState writes the live state as records (compaction) and returns how many.
func (l *Ledger) writeState(w io.Writer) (int, error) {
	n := 0
	for name, v := range l.meta {
		b, _ := json.Marshal(record{Op: "meta", Name: name, Value: v})
		if err := journal.AppendFrame(w, b); err != nil {
			return n, err
		}
		n++
	}
	for k, a := range l.accounts {
		for _, c := range a.credits {
			c := c
			b, _ := json.Marshal(record{Op: "credit", Key: k, Credit: &c})
			if err := journal.AppendFrame(w, b); err != nil {
				return n, err
			}
			n++
		}
		b, _ := json.Marshal(record{Op: "consumed", Key: k, Consumed: a.bal.ConsumedMillis})
		if err := journal.AppendFrame(w, b); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
