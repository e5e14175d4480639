package endmsg

import (
	"testing"

	"github.com/dazaarvision/dazaar-vision/app/internal/headermsg"
)

func TestIs(t *testing.T) {
	for _, tt := range []struct {
		name string
		msg  []byte
		want bool
	}{
		{"the message", Encode(), true},
		{"empty", nil, false},
		{"a byte after it", []byte{Kind, 0}, false},
		{"a header message", headermsg.Encode(7), false},
		{"an invoice answer's version", []byte{1}, false},
	} {
		if got := Is(tt.msg); got != tt.want {
			t.Errorf("%s: Is(%x) = %v", tt.name, tt.msg, got)
		}
	}
	if Kind == headermsg.Kind || Kind == 0xd6 { // 0xd6: stream/swarm's redirect
		t.Fatal("the kind is taken")
	}
}
