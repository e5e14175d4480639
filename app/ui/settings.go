package ui

import (
	"context"
	"errors"
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/dazaarvision/dazaar-vision/app/secrets"
	"github.com/dazaarvision/dazaar-vision/app/session"
	"github.com/dazaarvision/dazaar-vision/internal/human"
)

// settingsScreen: the data directory and its quota, the secret store in use and why, payment
// back-ends saved, and the identity backup and restore (a passphrase-encrypted file).
type settingsScreen struct {
	u *UI
	w worker

	root       fyne.CanvasObject
	store      *widget.Label
	why        *widget.Label
	payments   *widget.Label
	result     *widget.Label
	backupBtn  *widget.Button
	restoreBtn *widget.Button
}

func (u *UI) showSettings() {
	s := &settingsScreen{u: u, w: newWorker(u)}
	s.build()
	u.show(s)
	u.withStoreOr(func(*secrets.Store) { s.fill() }, func(err error) { s.store.SetText(storeMessage(err)) })
}

func (s *settingsScreen) content() fyne.CanvasObject { return s.root }
func (s *settingsScreen) close()                     { s.w.cancel() }

func (s *settingsScreen) build() {
	home := widget.NewButtonWithIcon("Home", theme.HomeIcon(), func() { s.u.showHome() })
	s.store = wrapLabel("Opening the secret store…")
	s.why = wrapLabel("")
	s.why.Importance = widget.LowImportance
	s.payments = wrapLabel("")
	s.result = wrapLabel("")
	s.backupBtn = widget.NewButtonWithIcon("Back up…", theme.DocumentSaveIcon(), s.backupDialog)
	s.restoreBtn = widget.NewButtonWithIcon("Restore…", theme.FolderOpenIcon(), s.restoreDialog)
	data := wrapLabel(s.u.opts.Data.Root)
	quota := wrapLabel(fmt.Sprintf("Copies of watched streams take at most %s together; the least recently watched are removed first. Your own streams are never removed.",
		human.Bytes(session.DefaultWatchedQuota)))
	form := container.NewVBox(
		widget.NewRichTextFromMarkdown("## Settings"),
		heading("Data directory"), data,
		widget.NewLabel("Start the app with -data-dir DIR to use another one."), quota,
		widget.NewSeparator(),
		heading("Secrets"), s.store, s.why,
		widget.NewSeparator(),
		heading("Payments"), s.payments,
		widget.NewSeparator(),
		heading("Identity backup"),
		wrapLabel("A backup holds your network identity, your streams' signing keys and your LND credentials, encrypted with a passphrase. Restored on a new machine, it keeps your cards working and your paid time as a viewer."),
		container.NewHBox(s.backupBtn, s.restoreBtn), s.result)
	s.root = container.NewBorder(container.NewHBox(home), nil, nil, nil, container.NewVScroll(container.NewPadded(form)))
}

// fill shows the store (once it is open).
func (s *settingsScreen) fill() {
	st := s.u.store
	s.store.SetText("In use: " + st.Description())
	s.why.SetText("Why: " + st.Reason())
	if session.HasLightning(st) {
		s.payments.SetText("LND credentials (an invoice macaroon and a certificate) are saved in the secret store; Go live offers to reuse them.")
	} else {
		s.payments.SetText("No LND credentials saved yet: Go live asks for them when a stream is paid.")
	}
	s.root.Refresh()
}

// storeFailed says that the secret store could not be opened for a backup or a restore.
func (s *settingsScreen) storeFailed(err error) { s.result.SetText(storeMessage(err)) }

func (s *settingsScreen) backupDialog() {
	s.u.withStoreOr(func(st *secrets.Store) {
		pass, again := widget.NewPasswordEntry(), widget.NewPasswordEntry()
		path := widget.NewEntry()
		path.SetPlaceHolder("where to write the backup")
		browse := widget.NewButtonWithIcon("", theme.FolderOpenIcon(), func() {
			dialog.ShowFileSave(func(w fyne.URIWriteCloser, err error) {
				if w != nil {
					path.SetText(w.URI().Path())
					w.Close()
				}
			}, s.u.win)
		})
		items := []*widget.FormItem{
			widget.NewFormItem("File", container.NewBorder(nil, nil, nil, browse, path)),
			widget.NewFormItem("Passphrase", pass),
			widget.NewFormItem("Again", again),
		}
		d := dialog.NewForm("Back up your identity", "Back up", "Cancel", items, func(ok bool) {
			if !ok {
				return
			}
			if pass.Text != again.Text {
				s.result.SetText("The two passphrases differ: nothing was written.")
				return
			}
			s.backup(st, path.Text, pass.Text)
		}, s.u.win)
		d.Resize(fyne.NewSize(520, 260))
		d.Show()
	}, s.storeFailed)
}

// backup writes the encrypted backup on a goroutine (the key derivation takes a moment).
func (s *settingsScreen) backup(st *secrets.Store, path, pass string) {
	s.result.SetText("Writing the backup…")
	s.backupBtn.Disable()
	async(s.w, func(context.Context) (int, error) { return backupTo(st, path, pass) }, func(n int, err error) {
		s.backupBtn.Enable()
		if err != nil {
			s.result.SetText(err.Error())
			return
		}
		s.result.SetText(fmt.Sprintf("Backed up %d secrets to %s, encrypted with the passphrase. Keep the file and the passphrase apart.", n, path))
	})
}

func backupTo(st *secrets.Store, path, pass string) (int, error) {
	if path == "" {
		return 0, errors.New("choose a file to write the backup to")
	}
	if err := secrets.CheckBackupPassphrase([]byte(pass)); err != nil {
		return 0, err
	}
	blob, err := st.Export([]byte(pass), secrets.KDFParams{})
	if err != nil {
		return 0, fmt.Errorf("cannot back up the secrets: %w", err)
	}
	if err := secrets.WriteBackupFile(path, blob); err != nil {
		return 0, fmt.Errorf("cannot write the backup: %w", err)
	}
	names, _ := st.List()
	return len(names), nil
}

func (s *settingsScreen) restoreDialog() {
	s.u.withStoreOr(func(st *secrets.Store) {
		pass := widget.NewPasswordEntry()
		path := widget.NewEntry()
		path.SetPlaceHolder("the backup file")
		browse := widget.NewButtonWithIcon("", theme.FolderOpenIcon(), func() {
			dialog.ShowFileOpen(func(r fyne.URIReadCloser, err error) {
				if r != nil {
					path.SetText(r.URI().Path())
					r.Close()
				}
			}, s.u.win)
		})
		items := []*widget.FormItem{
			widget.NewFormItem("File", container.NewBorder(nil, nil, nil, browse, path)),
			widget.NewFormItem("Passphrase", pass),
		}
		d := dialog.NewForm("Restore your identity", "Restore", "Cancel", items, func(ok bool) {
			if ok {
				s.restore(st, path.Text, pass.Text)
			}
		}, s.u.win)
		d.Resize(fyne.NewSize(520, 220))
		d.Show()
	}, s.storeFailed)
}

func (s *settingsScreen) restore(st *secrets.Store, path, pass string) {
	s.result.SetText("Restoring…")
	s.restoreBtn.Disable()
	async(s.w, func(context.Context) (int, error) { return restoreFrom(st, path, pass) }, func(n int, err error) {
		s.restoreBtn.Enable()
		if err != nil {
			s.result.SetText(err.Error())
			return
		}
		s.result.SetText(fmt.Sprintf("Restored %d secrets: your identity, streams and credentials are back.", n))
		s.fill()
	})
}

func restoreFrom(st *secrets.Store, path, pass string) (int, error) {
	blob, err := secrets.ReadBackupFile(path)
	if err != nil {
		return 0, fmt.Errorf("cannot read the backup: %w", err)
	}
	names, err := st.Import(blob, []byte(pass))
	if errors.Is(err, secrets.ErrWrongPassphrase) {
		return 0, errors.New("wrong passphrase: nothing was restored")
	}
	if err != nil {
		return 0, fmt.Errorf("cannot restore the backup: %w", err)
	}
	return len(names), nil
}
