package lightning

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Tests and fuzz targets for what LND answers (REST bodies, subscription lines) and for the
// lnd.conf reader.

func TestRESTListenFromConf(t *testing.T) {
	for _, tc := range []struct{ name, conf, want string }{
		{"none", "[Application Options]\nrpclisten=0.0.0.0:10009\n", ""},
		{"empty file", "", ""},
		{"host and port", "[Application Options]\nrestlisten=0.0.0.0:8081\n", "0.0.0.0:8081"},
		{"bare port", "restlisten=:8080", "127.0.0.1:8080"},
		{"spaces and CRLF", "  restlisten =  :8443 \r\n", "127.0.0.1:8443"},
		{"first of several", "restlisten=localhost:1\nrestlisten=localhost:2\n", "localhost:1"},
		{"commented out", "; restlisten=:1\n#restlisten=:2\n", ""},
		{"another key ending the same", "norestlisten=:1\nrestlistenx=:2\n", ""},
		{"empty value", "restlisten=\nrestlisten=:9\n", ""},
		{"IPv6", "restlisten=[::1]:8080\n", "[::1]:8080"},
		{"an = in the value", "restlisten=a=b\n", "a=b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := restListenIn(tc.conf); got != tc.want {
				t.Fatalf("restListenIn(%q) = %q, want %q", tc.conf, got, tc.want)
			}
			path := filepath.Join(t.TempDir(), "lnd.conf")
			if err := os.WriteFile(path, []byte(tc.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := RESTListenFromConf(path); got != tc.want {
				t.Fatalf("RESTListenFromConf = %q, want %q", got, tc.want)
			}
		})
	}
	if got := RESTListenFromConf(filepath.Join(t.TempDir(), "missing.conf")); got != "" {
		t.Fatalf("no lnd.conf gives %q", got)
	}
}

// FuzzRESTListenFromConf: whatever lnd.conf holds, the address read is one line's trimmed value
// (":port" completed with 127.0.0.1), found in the text; a conf of that one line reads the same;
// and a restlisten= line put first wins.
func FuzzRESTListenFromConf(f *testing.F) {
	for _, s := range []string{
		"[Application Options]\nrestlisten=0.0.0.0:8081\nrpclisten=:10009\n",
		"restlisten=:8080", "  restlisten =  :8443 \r\n", "#restlisten=:1\nrestlisten=[::1]:2", "restlisten=\n", "",
		"restlisten=\u00a0:1\u2028", "x\nrestlisten=a=b=c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := restListenIn(text)
		if got != strings.TrimSpace(got) || strings.Contains(got, "\n") || strings.HasPrefix(got, ":") {
			t.Fatalf("read %q", got)
		}
		if got != "" && !strings.Contains(text, got) && !strings.Contains(text, strings.TrimPrefix(got, "127.0.0.1")) {
			t.Fatalf("read %q, which is not in the text", got)
		}
		if got != "" {
			if again := restListenIn("restlisten=" + got + "\n"); again != got {
				t.Fatalf("restlisten=%s reads as %q", got, again)
			}
		}
		if first := restListenIn("restlisten=127.0.0.1:1\n" + text); first != "127.0.0.1:1" {
			t.Fatalf("a first restlisten= line gives way to %q", first)
		}
	})
}

// FuzzDecodeAnswer: LND's answer, any status and body, decodes (decodeAnswer) into the invoice a
// lookup reads and the answer AddInvoice reads, or fails: a status other than 200 is never
// success, and fails either with ErrRefused or with an *APIError carrying the status and
// non-empty words, never both; an invoice that decodes, written back as LND writes it (uint64s
// as strings), decodes the same.
func FuzzDecodeAnswer(f *testing.F) {
	h := make([]byte, 32)
	h[0] = 7
	for _, s := range []struct {
		code int
		body string
	}{
		{200, `{"memo":"dazaar: s v","r_hash":"` + base64.StdEncoding.EncodeToString(h) + `","state":"SETTLED","amt_paid_msat":"1000","settle_index":"5"}`},
		{200, `{"r_hash":"BwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","payment_request":"lnsb10u1p...","add_index":"3"}`},
		{200, `{"state":"OPEN","settle_index":0,"amt_paid_msat":null}`},
		{200, `{"settle_index":"18446744073709551616"}`},
		{404, `{"code":5,"message":"unable to locate invoice","details":[]}`},
		{500, `{"code":2,"message":"verification failed: signature mismatch after caveat verification"}`},
		{401, ``},
		{503, `<html>bad gateway</html>`},
		{200, `not json`},
	} {
		f.Add(s.code, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, code int, raw []byte) {
		status := strconv.Itoa(code) + " " + http.StatusText(code)
		var inv lndInvoice
		err := decodeAnswer(code, status, raw, &inv)
		var added struct {
			RHash          string `json:"r_hash"`
			PaymentRequest string `json:"payment_request"`
		}
		err2 := decodeAnswer(code, status, raw, &added)
		if code != http.StatusOK {
			for _, err := range []error{err, err2} {
				var api *APIError
				refused, isAPI := errors.Is(err, ErrRefused), errors.As(err, &api)
				if refused == isAPI {
					t.Fatalf("status %d: error %v is refusal %v and API error %v", code, err, refused, isAPI)
				}
				if isAPI && (api.Status != code || api.Message == "") {
					t.Fatalf("status %d gives %+v", code, api)
				}
			}
			if err.Error() != err2.Error() {
				t.Fatalf("one answer, two errors: %v, %v", err, err2)
			}
			return
		}
		if err != nil {
			return
		}
		body, _ := json.Marshal(map[string]string{"memo": inv.Memo, "r_hash": inv.RHash, "state": inv.State,
			"amt_paid_msat": strconv.FormatUint(uint64(inv.AmtPaidMsat), 10), "settle_index": strconv.FormatUint(uint64(inv.SettleIndex), 10)})
		var again lndInvoice
		if err := decodeAnswer(200, "200 OK", body, &again); err != nil || again != inv {
			t.Fatalf("invoice %+v re-decodes as %+v (%v)", inv, again, err)
		}
	})
}

// FuzzStreamLine: a line of the invoice subscription decodes (decodeStreamLine) to an invoice,
// none, or an error; one reported settled after an index has a hex payment hash of 32 bytes and a
// settle index past that index; and the settle written back as LND writes it is reported the same.
func FuzzStreamLine(f *testing.F) {
	f.Add([]byte(settledLine(5, 1, 1000)), uint64(4))
	f.Add([]byte(settledLine(5, 1, 1000)), uint64(5))
	f.Add([]byte(`{"result":{"state":"OPEN","settle_index":"0"}}`), uint64(0))
	f.Add([]byte(`{"error":{"code":14,"message":"shutting down"}}`), uint64(0))
	f.Add([]byte(`{"result":{"state":"SETTLED","settle_index":"9","r_hash":"AAAA"}}`), uint64(1))
	f.Add([]byte(`{"result":null}`), uint64(0))
	f.Add([]byte(`not json`), uint64(0))
	f.Fuzz(func(t *testing.T, line []byte, idx uint64) {
		inv, err := decodeStreamLine(line)
		if err != nil {
			if inv != nil {
				t.Fatal("an invoice with an error")
			}
			return
		}
		s, ok, err := settledAfter(inv, idx)
		if err != nil || !ok {
			if ok {
				t.Fatal("settled with an error")
			}
			return
		}
		if h, err := hex.DecodeString(s.Hash); err != nil || len(h) != 32 || s.SettleIndex <= idx || !s.SeenAt.IsZero() {
			t.Fatalf("reported %+v after index %d", s, idx)
		}
		h, _ := hex.DecodeString(s.Hash)
		msg, _ := json.Marshal(map[string]any{"result": map[string]string{"memo": s.Memo, "r_hash": base64.StdEncoding.EncodeToString(h),
			"state": "SETTLED", "amt_paid_msat": strconv.FormatUint(s.AmtPaidMsat, 10), "settle_index": strconv.FormatUint(s.SettleIndex, 10)}})
		inv2, err := decodeStreamLine(msg)
		if err != nil {
			t.Fatalf("settle %+v written back does not decode: %v", s, err)
		}
		s2, ok, err := settledAfter(inv2, idx)
		if err != nil || !ok || s2 != s {
			t.Fatalf("settle %+v written back reads as %+v, %v, %v", s, s2, ok, err)
		}
	})
}
