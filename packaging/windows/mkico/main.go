// Command mkico packs PNG pictures into one Windows icon (.ico) file, each picture stored as
// PNG (which Windows reads since Vista): `mkico -o app.ico 16.png 32.png 48.png 256.png`.
// The Windows build uses it to give the exe and the installer the app's icon without
// ImageMagick; the sizes are drawn from the SVG beforehand (rsvg-convert).
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"os"
)

func main() {
	out := flag.String("o", "", "the .ico file to write")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mkico -o FILE.ico PICTURE.png...")
		os.Exit(2)
	}
	var pics [][]byte
	for _, p := range flag.Args() {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkico:", err)
			os.Exit(1)
		}
		pics = append(pics, b)
	}
	ico, err := pack(pics)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkico:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, ico, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "mkico:", err)
		os.Exit(1)
	}
}

// pack writes the ICONDIR header, one ICONDIRENTRY a picture, then the PNG files as they are.
// A picture must be a square PNG of 1 to 256 pixels a side.
func pack(pics [][]byte) ([]byte, error) {
	if len(pics) == 0 || len(pics) > 64 {
		return nil, fmt.Errorf("%d pictures: an icon holds 1 to 64", len(pics))
	}
	var buf bytes.Buffer
	le := binary.LittleEndian
	buf.Write(le.AppendUint16(nil, 0))                 // reserved
	buf.Write(le.AppendUint16(nil, 1))                 // type: icon
	buf.Write(le.AppendUint16(nil, uint16(len(pics)))) // count
	offset := 6 + 16*len(pics)
	for i, p := range pics {
		cfg, err := png.DecodeConfig(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("picture %d is not a PNG: %w", i+1, err)
		}
		if cfg.Width != cfg.Height || cfg.Width < 1 || cfg.Width > 256 {
			return nil, errors.New("each picture must be square, 1 to 256 pixels a side")
		}
		side := byte(cfg.Width) // 256 is written as 0
		buf.Write([]byte{side, side, 0, 0})
		buf.Write(le.AppendUint16(nil, 1))  // colour planes
		buf.Write(le.AppendUint16(nil, 32)) // bits per pixel
		buf.Write(le.AppendUint32(nil, uint32(len(p))))
		buf.Write(le.AppendUint32(nil, uint32(offset)))
		offset += len(p)
	}
	for _, p := range pics {
		buf.Write(p)
	}
	return buf.Bytes(), nil
}
