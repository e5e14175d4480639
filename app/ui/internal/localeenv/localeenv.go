// Package localeenv keeps Fyne quiet about a C or POSIX locale. Fyne reads the locale from the
// environment while its packages initialise (fyne.io/fyne/v2/lang), and a locale such as
// C.UTF-8, the default of many containers and minimal systems, is not a language tag: it logs
// "Fyne error: Error parsing user locale C" on every start, for every command. When the
// locale in effect (LC_ALL, LC_MESSAGES, then LANG) is C or POSIX with an encoding or a
// modifier and LANGUAGE is unset, this package sets LANGUAGE=en, which is what Fyne falls back
// to anyway: go-locale consults LANGUAGE for such a locale, and gettext ignores LANGUAGE
// under the C locale, so nothing else changes.
//
// It must initialise before Fyne's lang package: Go initialises, among the packages whose
// imports are ready, the one with the smallest import path first, and this one needs only
// os, which go-locale (github.com/jeandeaual/go-locale, a larger path, imported by lang)
// needs too. app/ui imports it, so every program with the window gets it; a test checks it.
package localeenv

import (
	"os"
	"strings"
)

func init() { Apply(os.Getenv, os.Setenv) }

// Apply sets LANGUAGE=en with set when the locale get reports is C or POSIX with an encoding
// or modifier (C.UTF-8, POSIX.utf8, C@euro) and LANGUAGE is empty. A bare C or POSIX is left
// alone: Fyne reads it as no locale, quietly.
func Apply(get func(string) string, set func(string, string) error) {
	if get("LANGUAGE") != "" {
		return
	}
	var loc string
	for _, env := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if loc = get(env); loc != "" {
			break
		}
	}
	if loc == "C" || loc == "POSIX" {
		return
	}
	lang, _, _ := strings.Cut(loc, ".")
	lang, _, _ = strings.Cut(lang, "@")
	if lang == "C" || lang == "POSIX" {
		_ = set("LANGUAGE", "en") // cannot fail for a valid name
	}
}
