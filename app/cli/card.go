package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dazaarvision/dazaar-vision/app/card"
)

func (e *env) card(args []string) error {
	if len(args) == 0 {
		return usagef("card needs a subcommand: inspect")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return groupHelp("card")
	case "inspect":
		return e.cardInspect(args[1:])
	}
	return usagef("unknown card subcommand %q", args[0])
}

// cardText reads a card argument: the card itself (text or JSON), a file holding one, or -
// for stdin. fromFile says whether it named a file.
func (e *env) cardText(arg string) (text string, fromFile bool, err error) {
	read := func(r io.Reader, what string) (string, error) {
		b, err := io.ReadAll(io.LimitReader(r, card.MaxInput+1))
		if err != nil {
			return "", fmt.Errorf("cannot read the card from %s: %w", what, err)
		}
		if len(b) > card.MaxInput {
			return "", fmt.Errorf("%s holds more than %d bytes, more than any card", what, card.MaxInput)
		}
		return string(b), nil
	}
	if arg == "-" {
		text, err := read(e.stdin, "stdin")
		return text, false, err
	}
	t := strings.ToLower(strings.TrimSpace(arg))
	if strings.HasPrefix(t, card.Prefix) || strings.HasPrefix(t, "{") {
		return arg, false, nil
	}
	fi, err := os.Stat(arg)
	if err != nil || fi.IsDir() {
		return arg, false, nil // not a file: let Parse say what is wrong with it as a card
	}
	f, err := os.Open(arg)
	if err != nil {
		return "", true, fmt.Errorf("cannot read the card: %w", err)
	}
	defer f.Close()
	text, err = read(f, arg)
	return text, true, err
}

// parseCardArg reads and parses a card argument (the card, a file holding one, or - for
// stdin), saying in words what is wrong with one that is not a card.
func (e *env) parseCardArg(arg string) (card.Card, card.Report, error) {
	text, fromFile, err := e.cardText(arg)
	if err != nil {
		return card.Card{}, card.Report{}, err
	}
	c, rep, err := card.ParseReport(text)
	if err != nil {
		var fe *card.ForeignCardError
		if errors.As(err, &fe) {
			return c, rep, err // it was read: the message says what it is and where it lives
		}
		if errors.Is(err, card.ErrNotCard) && !fromFile && arg != "-" && !strings.ContainsAny(arg, "{\n") {
			if fi, serr := os.Stat(arg); serr == nil && fi.IsDir() {
				return c, rep, fmt.Errorf("cannot read the card: %q is a directory; give a card, a file holding one, or -", arg)
			}
			return c, rep, fmt.Errorf("cannot read the card: %w; and there is no file named %q", err, arg)
		}
		return c, rep, fmt.Errorf("cannot read the card: %w", err)
	}
	return c, rep, nil
}

func (e *env) cardInspect(args []string) error {
	fs := e.flags("card inspect")
	asJSON := fs.Bool("json", false, "print the card's JSON form")
	rest, err := parse(fs, args, 1, -1, "[-json] CARD|FILE|-")
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("card inspect takes one card (put a card with spaces in quotes, or give a file or -)")
	}
	c, rep, err := e.parseCardArg(rest[0])
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.out, "%s\n", b)
		if n := rep.Note(); n != "" {
			fmt.Fprintf(e.err, "note: %s\n", n)
		}
		return nil
	}
	const indent = "\n             "
	fmt.Fprintf(e.out, "name:        %s\n", shownName(c.Name))
	if c.Description != "" {
		fmt.Fprintf(e.out, "description: %s\n", strings.ReplaceAll(c.Description, "\n", indent))
	}
	fmt.Fprintf(e.out, "terms:       %s\n", c.Terms())
	if c.Network != "" {
		fmt.Fprintf(e.out, "network:     %s\n", c.Network)
	}
	fmt.Fprintf(e.out, "feed key:    %s\n", hex.EncodeToString(c.Feed[:]))
	fmt.Fprintf(e.out, "seller:      %s\n", c.Seller)
	if len(c.Addrs) == 0 {
		fmt.Fprintf(e.out, "addresses:   none (found through the DHT)\n")
	} else {
		fmt.Fprintf(e.out, "addresses:   %s\n", strings.Join(c.Addrs, indent))
	}
	if rep.JSON {
		s := c.String()
		fmt.Fprintf(e.out, "text form:   %s (%d characters)\n", s, len(s))
	}
	if n := rep.Note(); n != "" {
		fmt.Fprintf(e.out, "note:        %s\n", n)
	}
	return nil
}
