package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	st := Status{Fork: 1, Length: 10, Flags: StatusHasSyncPoint | StatusLive, SyncPoint: 7}
	rg := Range{ID: 3, Start: 5, End: 9, FromLength: 4}
	nd := NoData{ID: 9, Reason: "no time left on your subscription"}
	ac := Access{State: Allowed, RemainingMs: 60000}
	app := []byte("invoice please")
	sg := Signature{Fork: 2, Length: 11, Sig: bytes.Repeat([]byte{7}, 64)}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Frame(TStatus, st.AppendBinary))
	must(w.Frame(TRange, rg.AppendBinary))
	must(w.Frame(TNoData, nd.AppendBinary))
	must(w.Frame(TAccess, ac.AppendBinary))
	must(w.Frame(TApp, func(b []byte) ([]byte, error) { return append(b, app...), nil }))
	must(w.Frame(TData, func(b []byte) ([]byte, error) {
		return AppendTagged(b, 42, func(b []byte) ([]byte, error) { return append(b, "proof"...), nil })
	}))
	must(w.Frame(TSignature, sg.AppendBinary))
	must(w.Flush())
	total := buf.Len()

	r := NewReader(&buf, 1024)
	next := func(want Type) []byte {
		t.Helper()
		ty, body, err := r.Next()
		if err != nil || ty != want {
			t.Fatalf("got %v %v, want %v", ty, err, want)
		}
		return body
	}
	if got, err := DecodeStatus(next(TStatus)); err != nil || got != st {
		t.Fatalf("status %+v %v", got, err)
	}
	if got, err := DecodeRange(next(TRange)); err != nil || got != rg {
		t.Fatalf("range %+v %v", got, err)
	}
	if got, err := DecodeNoData(next(TNoData)); err != nil || got != nd {
		t.Fatalf("nodata %+v %v", got, err)
	}
	if got, err := DecodeAccess(next(TAccess)); err != nil || got != ac {
		t.Fatalf("access %+v %v", got, err)
	}
	if got, err := DecodeApp(next(TApp)); err != nil || !bytes.Equal(got, app) {
		t.Fatalf("app %q %v", got, err)
	}
	if got, err := DecodeTagged(next(TData)); err != nil || got.ID != 42 || string(got.Payload) != "proof" {
		t.Fatalf("tagged %+v %v", got, err)
	}
	if got, err := DecodeSignature(next(TSignature)); err != nil || got.Fork != 2 || got.Length != 11 || !bytes.Equal(got.Sig, sg.Sig) {
		t.Fatalf("signature %+v %v", got, err)
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
	if r.BytesRead() != uint64(total) || w.BytesWritten() != uint64(total) {
		t.Fatalf("byte counts %d %d, want %d", r.BytesRead(), w.BytesWritten(), total)
	}
}

// The reader is given only a length prefix: reading a body would hit EOF instead of
// ErrFrameTooBig, and allocating it would show in the memory statistics.
func TestOversizedFrameRefusedBeforeAllocation(t *testing.T) {
	hdr := binary.AppendUvarint(nil, 1<<40)
	r := NewReader(bytes.NewReader(hdr), 1<<20)
	_, _, err := r.Next()
	if !errors.Is(err, ErrFrameTooBig) {
		t.Fatalf("got %v, want ErrFrameTooBig", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		r := NewReader(bytes.NewReader(hdr), 1<<20)
		_, _, _ = r.Next()
	}
	runtime.ReadMemStats(&after)
	// The reader's 64 KiB buffer each time, never the 1 TiB body (nor the 1 MiB cap).
	if got := after.TotalAlloc - before.TotalAlloc; got > 10*(80<<10) {
		t.Fatalf("%d bytes allocated for 10 refused frames", got)
	}
}

func TestMalformed(t *testing.T) {
	cases := []struct {
		name string
		dec  func([]byte) error
		in   []byte
	}{
		{"status trailing", func(b []byte) error { _, err := DecodeStatus(b); return err }, []byte{0, 1, 0, 0, 9}},
		{"status sync past length", func(b []byte) error { _, err := DecodeStatus(b); return err }, []byte{0, 1, 1, 5}},
		{"status short", func(b []byte) error { _, err := DecodeStatus(b); return err }, []byte{0}},
		{"range empty", func(b []byte) error { _, err := DecodeRange(b); return err }, []byte{1, 5, 5, 0}},
		{"range huge", func(b []byte) error { _, err := DecodeRange(b); return err }, Range{1, 0, 1 << 30, 0}.must()},
		{"nodata long reason", func(b []byte) error { _, err := DecodeNoData(b); return err }, append([]byte{1, 0xff, 0x7f}, make([]byte, 20)...)},
		{"access state", func(b []byte) error { _, err := DecodeAccess(b); return err }, []byte{9, 0, 0}},
		{"app too big", func(b []byte) error { _, err := DecodeApp(b); return err }, make([]byte, MaxApp+1)},
		{"signature empty", func(b []byte) error { _, err := DecodeSignature(b); return err }, []byte{0, 5, 0}},
		{"signature long", func(b []byte) error { _, err := DecodeSignature(b); return err }, append([]byte{0, 5, 0x81, 0x08}, make([]byte, MaxSignature+1)...)},
		{"signature short", func(b []byte) error { _, err := DecodeSignature(b); return err }, []byte{0, 5, 64, 1, 2}},
		{"signature trailing", func(b []byte) error { _, err := DecodeSignature(b); return err }, []byte{0, 5, 1, 1, 2}},
		{"signature length 0", func(b []byte) error { _, err := DecodeSignature(b); return err }, []byte{0, 0, 1, 1}},
		{"tagged bad id", func(b []byte) error { _, err := DecodeTagged(b); return err }, []byte{0xff}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.dec(c.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	if _, _, err := NewReader(strings.NewReader("\x00"), 10).Next(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty frame: %v", err)
	}
	if _, _, err := NewReader(strings.NewReader("\x05ab"), 10).Next(); err == nil || errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body: %v", err)
	}
}

// Unknown status flags are a newer peer's capabilities: ignored, not an error.
func TestUnknownStatusFlagsIgnored(t *testing.T) {
	st, err := DecodeStatus([]byte{0, 1, 0x80 | StatusLive, 1, 0})
	if err != nil || st.Flags != StatusLive {
		t.Fatalf("got %+v, %v; want the live flag alone", st, err)
	}
}

func (r Range) must() []byte { b, _ := r.AppendBinary(nil); return b }

func FuzzReader(f *testing.F) {
	f.Add([]byte{3, 1, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), 4096)
		for {
			ty, body, err := r.Next()
			if err != nil {
				return
			}
			if len(body) >= 4096 {
				t.Fatalf("frame of %d bytes passed a 4096 cap", len(body)+1)
			}
			decodeAny(ty, body)
		}
	})
}

func decodeAny(ty Type, body []byte) {
	switch ty {
	case TStatus:
		_, _ = DecodeStatus(body)
	case TRange:
		_, _ = DecodeRange(body)
	case TNoData:
		_, _ = DecodeNoData(body)
	case TAccess:
		_, _ = DecodeAccess(body)
	case TApp:
		_, _ = DecodeApp(body)
	case TRequest, TData:
		_, _ = DecodeTagged(body)
	case TSignature:
		_, _ = DecodeSignature(body)
	}
}

func FuzzMessages(f *testing.F) {
	for _, s := range []func([]byte) ([]byte, error){
		Status{1, 2, 1, 1}.AppendBinary, Range{1, 2, 3, 4}.AppendBinary,
		NoData{1, "x"}.AppendBinary, Access{Allowed, 5, ""}.AppendBinary,
		Signature{1, 9, make([]byte, 64)}.AppendBinary,
	} {
		b, _ := s(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := DecodeStatus(b); err == nil {
			e, _ := s.AppendBinary(nil)
			if s2, err := DecodeStatus(e); err != nil || s2 != s {
				t.Fatalf("status does not round-trip: %+v %+v %v", s, s2, err)
			}
		}
		if r, err := DecodeRange(b); err == nil && (r.End <= r.Start || r.End-r.Start > MaxRangeBlocks) {
			t.Fatalf("bad range accepted: %+v", r)
		}
		if n, err := DecodeNoData(b); err == nil && len(n.Reason) > MaxReason {
			t.Fatal("long reason accepted")
		}
		if a, err := DecodeAccess(b); err == nil && (a.State > Free || len(a.Reason) > MaxReason) {
			t.Fatalf("bad access accepted: %+v", a)
		}
		if s, err := DecodeSignature(b); err == nil {
			if len(s.Sig) == 0 || len(s.Sig) > MaxSignature || s.Length == 0 {
				t.Fatalf("bad signature accepted: %+v", s)
			}
			e, err := s.AppendBinary(nil)
			s2, err2 := DecodeSignature(e)
			if err != nil || err2 != nil || s2.Fork != s.Fork || s2.Length != s.Length || !bytes.Equal(s2.Sig, s.Sig) {
				t.Fatalf("signature does not round-trip: %+v -> %x -> %+v %v %v", s, e, s2, err, err2)
			}
		}
		_, _ = DecodeTagged(b)
	})
}

// A reason over MaxReason is cut at a character boundary, never inside one (the viewer shows
// it to a person).
func TestLongReasonCutAtCharacterBoundary(t *testing.T) {
	reason := strings.Repeat("a", MaxReason-1) + "é and more"
	b, _ := NoData{ID: 1, Reason: reason}.AppendBinary(nil)
	nd, err := DecodeNoData(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(nd.Reason) > MaxReason || !utf8.ValidString(nd.Reason) || nd.Reason != strings.Repeat("a", MaxReason-1) {
		t.Fatalf("cut reason: %d bytes, valid UTF-8 %v", len(nd.Reason), utf8.ValidString(nd.Reason))
	}
}

// FrameParts writes the same bytes as Frame with the body appended, small or larger than the
// buffer.
func TestFramePartsMatchesFrame(t *testing.T) {
	for _, n := range []int{0, 10, 100 << 10} {
		body := bytes.Repeat([]byte{7}, n)
		var a, b bytes.Buffer
		wa, wb := NewWriter(&a), NewWriter(&b)
		if err := wa.Frame(TData, func(p []byte) ([]byte, error) { return append(append(p, 1, 2), body...), nil }); err != nil {
			t.Fatal(err)
		}
		if err := wb.FrameParts(TData, []byte{1, 2}, body); err != nil {
			t.Fatal(err)
		}
		_ = wa.Flush()
		_ = wb.Flush()
		if !bytes.Equal(a.Bytes(), b.Bytes()) || wa.BytesWritten() != wb.BytesWritten() {
			t.Fatalf("body of %d bytes: FrameParts wrote %d bytes (counted %d), Frame %d (counted %d)",
				n, b.Len(), wb.BytesWritten(), a.Len(), wa.BytesWritten())
		}
	}
}

// A reader with a buffer far smaller than its frames reads them whole and in order, and
// still refuses one over the cap.
func TestReaderSmallBuffer(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	sizes := []int{1, 15, 16, 17, 4095, 4096, 70000, 3}
	for i, n := range sizes {
		body := bytes.Repeat([]byte{byte(i + 1)}, n)
		if err := w.Frame(TApp, func(b []byte) ([]byte, error) { return append(b, body...), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Frame(TApp, func(b []byte) ([]byte, error) { return append(b, make([]byte, 80000)...), nil }); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := NewReaderSize(&buf, 1+70000, 16)
	for i, n := range sizes {
		ty, body, err := r.Next()
		if err != nil || ty != TApp || !bytes.Equal(body, bytes.Repeat([]byte{byte(i + 1)}, n)) {
			t.Fatalf("frame %d (%d bytes): type %v, %d bytes, %v", i, n, ty, len(body), err)
		}
	}
	if _, _, err := r.Next(); !errors.Is(err, ErrFrameTooBig) {
		t.Fatalf("80 000-byte frame with a 70 001-byte cap: %v, want ErrFrameTooBig", err)
	}
}
