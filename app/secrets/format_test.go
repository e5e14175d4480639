package secrets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"p2p/identity", true},
		{"lnd/macaroon", true},
		{"lnd/tls-cert", true},
		{FeedSeedName(strings.Repeat("0a", 32)), true},
		{"a", true},
		{"A-Z_0.9", true},
		{"x.y/.z", true},
		{strings.Repeat("n", MaxNameLen), true},
		{"", false},
		{strings.Repeat("n", MaxNameLen+1), false},
		{".index", false},
		{"/abs", false},
		{"trailing/", false},
		{"dou//ble", false},
		{"part#1", false},
		{"sp ace", false},
		{"col:on", false},
		{"tab\t", false},
		{"é", false},
	} {
		if err := ValidateName(c.name); (err == nil) != c.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, entries := range []map[string][]byte{
		{},
		{"a": nil},
		{"a": {1}, "b": bytes.Repeat([]byte{2}, 1000), "c/d": allBytes()},
		{"max": make([]byte, MaxValueSize)},
	} {
		p, err := encodePayload(entries)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodePayload(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(entries) {
			t.Fatalf("decoded %d entries, want %d", len(got), len(entries))
		}
		for n, v := range entries {
			if !bytes.Equal(got[n], v) {
				t.Errorf("entry %q differs", n)
			}
		}
	}
}

func TestPayloadRejects(t *testing.T) {
	good, _ := encodePayload(map[string][]byte{"a": []byte("x"), "b": []byte("y")})
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	cases := map[string][]byte{
		"empty":             nil,
		"short count":       {0, 0, 1},
		"count too big":     u32(maxEntries + 1),
		"count over input":  append(u32(1000), good[4:]...),
		"truncated":         good[:len(good)-1],
		"trailing":          append(bytes.Clone(good), 0),
		"duplicate":         append(append(u32(2), good[4:4+2+1+4+1]...), good[4:4+2+1+4+1]...),
		"out of order":      append(append(u32(2), good[4+8:]...), good[4:4+8]...),
		"bad name":          append(u32(1), 0, 1, '.', 0, 0, 0, 0),
		"name too long":     append(u32(1), append([]byte{0xff, 0xff}, make([]byte, 8)...)...),
		"value over cap":    append(u32(1), 0, 1, 'a', 0, 1, 0, 1),
		"value over input":  append(u32(1), 0, 1, 'a', 0, 0, 0, 9, 1),
		"missing value len": append(u32(1), 0, 1, 'a', 0),
	}
	for name, p := range cases {
		if _, err := decodePayload(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decodePayload = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestKDFParamsValidate(t *testing.T) {
	for _, c := range []struct {
		p  KDFParams
		ok bool
	}{
		{DefaultKDF, true},
		{testKDF, true},
		{KDFParams{Time: 0, MemoryKiB: 64, Threads: 1}, false},
		{KDFParams{Time: maxKDFTime + 1, MemoryKiB: 64, Threads: 1}, false},
		{KDFParams{Time: 1, MemoryKiB: 7, Threads: 1}, false},
		{KDFParams{Time: 1, MemoryKiB: 31, Threads: 4}, false},
		{KDFParams{Time: 1, MemoryKiB: maxKDFMemory + 1, Threads: 1}, false},
		{KDFParams{Time: 1, MemoryKiB: 64, Threads: 0}, false},
	} {
		if err := c.p.validate(); (err == nil) != c.ok {
			t.Errorf("%+v.validate() = %v, want ok=%v", c.p, err, c.ok)
		}
	}
}

func TestBackupIsNotAStoreFile(t *testing.T) {
	s := NewMemory()
	mustSet(t, s, "k", []byte("v"))
	blob, err := s.Export([]byte("pw"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decryptFile(blob, []byte("pw"), purposeStore); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a backup opened as a store file: %v", err)
	}
	_, file := createTestFile(t, map[string][]byte{"k": []byte("v")})
	if _, err := s.Import(file, []byte("right")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a store file imported as a backup: %v", err)
	}
	if _, err := s.Export(nil, testKDF); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("Export with no passphrase: %v", err)
	}
	// Two exports differ (fresh salt and nonce) but both restore.
	blob2, _ := s.Export([]byte("pw"), testKDF)
	if bytes.Equal(blob, blob2) {
		t.Error("two exports are identical")
	}
}

// fuzzPass opens the fuzz seeds; the decrypt path only runs for cheap KDF
// parameters, so the fuzzer spends its time in the parsers.
const fuzzPass = "fuzz"

func fuzzSeeds(f *testing.F) {
	k, err := newDerivedKey([]byte(fuzzPass), testKDF)
	if err != nil {
		f.Fatal(err)
	}
	for _, entries := range []map[string][]byte{
		{},
		{"a": []byte("x")},
		{"p2p/identity": allBytes(), "lnd/tls-cert": bytes.Repeat([]byte{7}, 900)},
	} {
		p, _ := encodePayload(entries)
		for _, purpose := range []byte{purposeStore, purposeBackup} {
			img, err := k.seal(purpose, p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(img)
		}
	}
	f.Add([]byte(magic))
	f.Add([]byte{})
}

// FuzzDecodeFile feeds arbitrary bytes to the file and backup decoder: it
// must return an error or entries, never panic, and never allocate past the
// caps (the KDF parameters are capped before use).
func FuzzDecodeFile(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("parse error %v is not ErrCorrupt", err)
			}
			return
		}
		if len(e.ciphertext) > maxCiphertext || e.kdf.validate() != nil {
			t.Fatalf("accepted past the caps: %+v, %d bytes", e.kdf, len(e.ciphertext))
		}
		if e.kdf.MemoryKiB > 1024 || e.kdf.Time > 2 {
			return // valid, but too slow to derive on every fuzz input
		}
		_, entries, err := decryptFile(data, []byte(fuzzPass), e.purpose)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("decrypt error %v is neither ErrCorrupt nor ErrWrongPassphrase", err)
			}
			return
		}
		for n, v := range entries {
			if ValidateName(n) != nil || len(v) > MaxValueSize {
				t.Fatalf("decoded an invalid entry %q (%d bytes)", n, len(v))
			}
		}
	})
}

// FuzzDecodePayload: any accepted payload is canonical, so it re-encodes to
// the same bytes.
func FuzzDecodePayload(f *testing.F) {
	for _, entries := range []map[string][]byte{{}, {"a": nil}, {"a": {1}, "b/c": allBytes()}} {
		p, _ := encodePayload(entries)
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		entries, err := decodePayload(p)
		if err != nil {
			return
		}
		again, err := encodePayload(entries)
		if err != nil {
			t.Fatalf("decoded entries do not encode: %v", err)
		}
		if !bytes.Equal(again, p) {
			t.Fatalf("payload not canonical: %x re-encodes as %x", p, again)
		}
	})
}

// FuzzKeyringItem: the keyring item parser never panics and accepts only
// well-formed items.
func FuzzKeyringItem(f *testing.F) {
	f.Add("dv1:1:0:0123456789abcdef:AAAA")
	f.Add("dv1:3:1:0123456789abcdef:")
	f.Add("dv1:x::")
	f.Add("")
	f.Fuzz(func(t *testing.T, item string) {
		m, err := parseMain(item)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if m.parts < 1 || m.parts > maxKeyringParts || len(m.sum) != keyringSumHexLen || m.gen < 0 || m.gen > 1 {
			t.Fatalf("accepted %+v", m)
		}
	})
}
