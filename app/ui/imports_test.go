package ui

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports: the window talks to the sessions only. No file of app/ui (tests aside) imports
// libp2p, mediadevices, or the wallet's node clients and invoice machinery.
func TestImports(t *testing.T) {
	banned := []string{"github.com/libp2p/", "github.com/multiformats/", "github.com/pion/mediadevices",
		"github.com/dazaarvision/dazaar-vision/stream/", "github.com/dazaarvision/dazaar-vision/wallet/lightning",
		"github.com/dazaarvision/dazaar-vision/wallet/onchain", "github.com/dazaarvision/dazaar-vision/wallet/invoice",
		"github.com/dazaarvision/dazaar-vision/media/capture", "github.com/dazaarvision/dazaar-vision/media/broadcast"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := filepath.Glob("internal/*/*.go")
	checked := 0
	for _, f := range append(files, sub...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			for _, b := range banned {
				if strings.HasPrefix(p, b) {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
	if checked < 8 {
		t.Fatalf("only %d files checked", checked)
	}
}
