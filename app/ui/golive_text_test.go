package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
)

// The wizard's first step refuses a title or description the card would refuse (pasted text
// hiding a soft hyphen or a zero-width space), saying which character to remove, before the
// camera, the feed or the network are opened.
func TestGoLiveRefusesInvisibleText(t *testing.T) {
	defer checkLeaks(t)()
	h := newHarness(t, test.NewTempApp(t), Options{})
	defer h.close()
	h.u.showGoLive("")
	g := h.u.cur.(*goLiveScreen)
	h.waitFor("the wizard to load", func() bool { return !g.next.Disabled() })
	cases := []struct{ title, desc, want string }{
		{"Garden", "Toma\u00adtoes growing", "the description contains an invisible character (soft hyphen); remove it"},
		{"Gar\u200bden", "", "the title contains an invisible character (zero-width space); remove it"},
		{strings.Repeat("n", 129), "", "the title is 129 bytes long; at most 128 fit on a card"},
	}
	for _, c := range cases {
		g.name.SetText(c.title)
		g.desc.SetText(c.desc)
		test.Tap(g.next)
		h.pump()
		if g.step != 0 || g.errLabel.Text != c.want {
			t.Errorf("%q / %q: step %d, the wizard says %q, want %q", c.title, c.desc, g.step+1, g.errLabel.Text, c.want)
		}
	}
	g.name.SetText("Garden")
	g.desc.SetText("Tomatoes growing")
	test.Tap(g.next)
	if g.step != 1 {
		t.Fatalf("a plain title and description stay on step %d: %q", g.step+1, g.errLabel.Text)
	}
}
