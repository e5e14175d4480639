package session

import (
	"strings"
	"testing"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/media/capture"
)

// The title and description are checked as the card will check them, before anything is
// opened, saying which character to remove.
func TestCheckStreamText(t *testing.T) {
	cases := []struct {
		name, title, desc string
		want              string // "" for accepted
	}{
		{"plain", "Alice's garden", "Tomatoes growing\nin real time.\tLive.", ""},
		{"Windows line ends", "Garden\r\n", "one\r\ntwo", ""},
		{"emoji with joiners", "👩‍🌾 garden", "", ""},
		{"empty", "", "", ""},
		{"soft hyphen", "Garden", "Toma\u00adtoes", "the description contains an invisible character (soft hyphen); remove it"},
		{"zero-width space", "Gar\u200bden", "", "the title contains an invisible character (zero-width space); remove it"},
		{"byte-order mark", "Garden", "\ufeffTomatoes", "the description contains an invisible character (byte-order mark); remove it"},
		{"right-to-left override", "Garden \u202etxt.exe", "", "the title contains a character that reorders text (right-to-left override); remove it"},
		{"line break in the title", "Gar\nden", "", "the title contains a control character (a line break); remove it"},
		{"line separator", "Garden", "one\u2028two", "the description contains an invisible character (line separator); remove it"},
		{"escape", "Garden", "\x1b[2J", "the description contains a control character (escape); remove it"},
		{"nothing visible", "\u200c\u200d", "", "the title has nothing visible in it"},
		{"title too long", strings.Repeat("n", 129), "", "the title is 129 bytes long; at most 128 fit on a card"},
		{"description too long", "Garden", strings.Repeat("d", 1025), "the description is 1025 bytes long; at most 1024 fit on a card"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckStreamText(c.title, c.desc)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || err.Error() != c.want):
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	// Going live refuses it before anything is opened: the camera here does not exist, and
	// neither the wizard's answers nor the broadcaster get as far as opening it.
	d, err := OpenDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cam := Source{Kind: SourceCamera, Label: "Camera", dev: capture.Device{ID: "no-such-camera", Kind: capture.Camera}}
	_, err = GoLive{Name: "Garden", Description: "Toma\u00adtoes", Video: &cam}.Config(d, secrets.NewMemory(), loopback, testLog(t))
	if err == nil || !strings.Contains(err.Error(), "soft hyphen") {
		t.Errorf("the wizard's answers: %v", err)
	}
	_, err = NewBroadcaster(BroadcasterConfig{Data: d, Secrets: secrets.NewMemory(), Name: "Garden", Description: "Toma\u00adtoes",
		Video: &cam.dev, Network: loopback, Logger: testLog(t)})
	if err == nil || !strings.Contains(err.Error(), "soft hyphen") {
		t.Errorf("NewBroadcaster: %v", err)
	}
}
