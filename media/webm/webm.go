// Package webm writes WebM files (Matroska subset): one VP8 video track and one Opus audio
// track, in clusters that each start at a video key frame, with Cues indexing those key
// frames so that players seek, a SeekHead, and the Duration filled in on Close; or, live,
// a stream written straight through to a pipe (unknown sizes, no Cues).
package webm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Element IDs (Matroska / WebM).
const (
	idEBML               = 0x1A45DFA3
	idEBMLVersion        = 0x4286
	idEBMLReadVersion    = 0x42F7
	idEBMLMaxIDLength    = 0x42F2
	idEBMLMaxSizeLength  = 0x42F3
	idDocType            = 0x4282
	idDocTypeVersion     = 0x4287
	idDocTypeReadVersion = 0x4285
	idSegment            = 0x18538067
	idSeekHead           = 0x114D9B74
	idSeek               = 0x4DBB
	idSeekID             = 0x53AB
	idSeekPosition       = 0x53AC
	idInfo               = 0x1549A966
	idTimecodeScale      = 0x2AD7B1
	idDuration           = 0x4489
	idMuxingApp          = 0x4D80
	idWritingApp         = 0x5741
	idDateUTC            = 0x4461
	idTitle              = 0x7BA9
	idTracks             = 0x1654AE6B
	idTrackEntry         = 0xAE
	idTrackNumber        = 0xD7
	idTrackUID           = 0x73C5
	idTrackType          = 0x83
	idFlagLacing         = 0x9C
	idCodecID            = 0x86
	idCodecPrivate       = 0x63A2
	idCodecDelay         = 0x56AA
	idSeekPreRoll        = 0x56BB
	idDefaultDuration    = 0x23E383
	idVideo              = 0xE0
	idPixelWidth         = 0xB0
	idPixelHeight        = 0xBA
	idAudio              = 0xE1
	idSamplingFrequency  = 0xB5
	idChannels           = 0x9F
	idCluster            = 0x1F43B675
	idTimecode           = 0xE7
	idSimpleBlock        = 0xA3
	idCues               = 0x1C53BB6B
	idCuePoint           = 0xBB
	idCueTime            = 0xB3
	idCueTrackPositions  = 0xB7
	idCueTrack           = 0xF7
	idCueClusterPosition = 0xF1
	idVoid               = 0xEC
)

// Track numbers in the files this package writes.
const (
	VideoTrack = 1
	AudioTrack = 2
)

// Config describes the tracks. A nil Video or Audio leaves that track out.
type Config struct {
	Video *VideoConfig
	Audio *AudioConfig
	Title string
	// Date is the recording's start, written as DateUTC.
	Date time.Time
}

// VideoConfig describes the VP8 track.
type VideoConfig struct {
	Width, Height int
	FrameDuration time.Duration // nominal; 0 leaves DefaultDuration out
}

// AudioConfig describes the Opus track.
type AudioConfig struct {
	Channels int
	// InputSampleRate is the rate the sound was captured at (informational in OpusHead).
	InputSampleRate int
}

// Opus pre-skip at 48 kHz: libopus' encoder look-ahead (6.5 ms), which decoders drop.
const opusPreSkip = 312

// maxClusterSpan keeps a SimpleBlock's 16-bit relative timecode in range (and clusters
// short when key frames are far apart).
const maxClusterSpan = 5 * time.Second

// Muxer writes one WebM file. A file (NewMuxer) needs an io.WriteSeeker to fill in sizes,
// the Duration and the SeekHead on Close; a live stream (NewLiveMuxer) is written straight
// through, for a pipe.
type Muxer struct {
	w    io.Writer
	ws   io.WriteSeeker // nil when live
	live bool
	cfg  Config

	segData     int64 // file offset of the Segment's data (positions count from here)
	segSizeAt   int64
	seekHeadAt  int64 // reserved Void that becomes the SeekHead
	durationAt  int64 // offset of Duration's 8-byte float
	infoPos     int64
	tracksPos   int64
	pos         int64 // current file offset
	cluster     bytes.Buffer
	clusterTime time.Duration
	inCluster   bool
	cues        []cue
	lastTime    [3]time.Duration
	end         time.Duration
	closed      bool
}

type cue struct {
	t     time.Duration
	track int
	pos   int64
}

const seekHeadReserve = 96

// NewMuxer writes the file's head: EBML header, Segment start, a reserved SeekHead, Info
// and Tracks.
func NewMuxer(w io.WriteSeeker, cfg Config) (*Muxer, error) {
	start, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("webm: %w", err)
	}
	return newMuxer(&Muxer{w: w, ws: w, cfg: cfg, pos: start})
}

// NewLiveMuxer writes a live WebM stream to w, which never seeks (a pipe: stdout into mpv
// or ffmpeg). The Segment and every Cluster have the unknown size, as a browser's
// MediaRecorder writes them, and each frame is written to w as it is added, so a reader
// sees a picture as soon as WriteVideo returns (wrap w in nothing that buffers, or flush
// it). There is no Duration, SeekHead or Cues: a reader plays it from the start as it comes.
// Close writes nothing more.
func NewLiveMuxer(w io.Writer, cfg Config) (*Muxer, error) {
	return newMuxer(&Muxer{w: w, live: true, cfg: cfg})
}

func newMuxer(m *Muxer) (*Muxer, error) {
	cfg := m.cfg
	if cfg.Video == nil && cfg.Audio == nil {
		return nil, errors.New("webm: no tracks")
	}
	if cfg.Audio != nil && (cfg.Audio.Channels < 1 || cfg.Audio.Channels > 2) {
		return nil, fmt.Errorf("webm: %d audio channels (1 or 2)", cfg.Audio.Channels)
	}
	var b []byte
	b = appendMaster(b, idEBML, func(b []byte) []byte {
		b = appendUint(b, idEBMLVersion, 1)
		b = appendUint(b, idEBMLReadVersion, 1)
		b = appendUint(b, idEBMLMaxIDLength, 4)
		b = appendUint(b, idEBMLMaxSizeLength, 8)
		b = appendString(b, idDocType, "webm")
		b = appendUint(b, idDocTypeVersion, 4)
		b = appendUint(b, idDocTypeReadVersion, 2)
		return b
	})
	b = appendID(b, idSegment)
	m.segSizeAt = m.pos + int64(len(b))
	b = append(b, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF) // unknown size until Close
	m.segData = m.pos + int64(len(b))
	m.seekHeadAt = m.pos + int64(len(b))
	if !m.live {
		b = appendVoid(b, seekHeadReserve)
	}
	m.infoPos = m.pos + int64(len(b)) - m.segData
	// Info, with Duration at a known offset (a live stream has none).
	var info []byte
	info = appendUint(info, idTimecodeScale, 1_000_000) // timecodes in milliseconds
	durOff := -1
	if !m.live {
		info = appendID(info, idDuration)
		info = append(info, 0x88) // size 8
		durOff = len(info)
		info = binary.BigEndian.AppendUint64(info, math.Float64bits(0))
	}
	info = appendString(info, idMuxingApp, "dazaar-vision")
	info = appendString(info, idWritingApp, "dazaar-vision")
	if !cfg.Date.IsZero() {
		// Nanoseconds since 2001-01-01T00:00:00 UTC.
		info = appendID(info, idDateUTC)
		info = append(info, 0x88)
		info = binary.BigEndian.AppendUint64(info, uint64(cfg.Date.Sub(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))))
	}
	if cfg.Title != "" {
		info = appendString(info, idTitle, cfg.Title)
	}
	b = appendID(b, idInfo)
	b = appendSize(b, len(info))
	m.durationAt = m.pos + int64(len(b)) + int64(durOff)
	b = append(b, info...)
	m.tracksPos = m.pos + int64(len(b)) - m.segData
	b = appendMaster(b, idTracks, func(b []byte) []byte {
		if v := cfg.Video; v != nil {
			b = appendMaster(b, idTrackEntry, func(b []byte) []byte {
				b = appendUint(b, idTrackNumber, VideoTrack)
				b = appendUint(b, idTrackUID, 0x564944454f) // "VIDEO"
				b = appendUint(b, idTrackType, 1)
				b = appendUint(b, idFlagLacing, 0)
				b = appendString(b, idCodecID, "V_VP8")
				if v.FrameDuration > 0 {
					b = appendUint(b, idDefaultDuration, uint64(v.FrameDuration))
				}
				b = appendMaster(b, idVideo, func(b []byte) []byte {
					b = appendUint(b, idPixelWidth, uint64(v.Width))
					b = appendUint(b, idPixelHeight, uint64(v.Height))
					return b
				})
				return b
			})
		}
		if a := cfg.Audio; a != nil {
			b = appendMaster(b, idTrackEntry, func(b []byte) []byte {
				b = appendUint(b, idTrackNumber, AudioTrack)
				b = appendUint(b, idTrackUID, 0x415544494f) // "AUDIO"
				b = appendUint(b, idTrackType, 2)
				b = appendUint(b, idFlagLacing, 0)
				b = appendString(b, idCodecID, "A_OPUS")
				b = appendBytes(b, idCodecPrivate, opusHead(a))
				b = appendUint(b, idCodecDelay, uint64(opusPreSkip)*uint64(time.Second)/48000)
				b = appendUint(b, idSeekPreRoll, uint64(80*time.Millisecond))
				b = appendMaster(b, idAudio, func(b []byte) []byte {
					b = appendFloat(b, idSamplingFrequency, 48000)
					b = appendUint(b, idChannels, uint64(a.Channels))
					return b
				})
				return b
			})
		}
		return b
	})
	if err := m.write(b); err != nil {
		return nil, err
	}
	for i := range m.lastTime {
		m.lastTime[i] = -1
	}
	return m, nil
}

// opusHead is the Ogg Opus identification header (RFC 7845 §5.1), Matroska's CodecPrivate
// for A_OPUS.
func opusHead(a *AudioConfig) []byte {
	b := []byte("OpusHead")
	b = append(b, 1, byte(a.Channels))
	b = binary.LittleEndian.AppendUint16(b, opusPreSkip)
	rate := a.InputSampleRate
	if rate <= 0 {
		rate = 48000
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint16(b, 0) // output gain
	return append(b, 0)                        // channel mapping family 0 (mono/stereo)
}

func (m *Muxer) write(b []byte) error {
	n, err := m.w.Write(b)
	m.pos += int64(n)
	if err != nil {
		return fmt.Errorf("webm: writing: %w", err)
	}
	return nil
}

// ErrOrder is returned for a frame older than the previous one on its track by more
// than orderSlack.
var ErrOrder = errors.New("webm: timestamps go backwards")

// orderSlack is how far back a timestamp may be and still be moved after the previous.
const orderSlack = 5 * time.Millisecond

// WriteVideo adds a VP8 frame at t (from the file's start). A key frame starts a new
// cluster and gets a cue.
func (m *Muxer) WriteVideo(t time.Duration, key bool, frame []byte) error {
	if m.cfg.Video == nil {
		return errors.New("webm: no video track")
	}
	return m.writeBlock(VideoTrack, t, key, frame)
}

// WriteAudio adds an Opus packet at t. Audio interleaved with video should be written in
// time order with it.
func (m *Muxer) WriteAudio(t time.Duration, packet []byte, dur time.Duration) error {
	if m.cfg.Audio == nil {
		return errors.New("webm: no audio track")
	}
	if err := m.writeBlock(AudioTrack, t, true, packet); err != nil {
		return err
	}
	m.end = max(m.end, t+dur)
	return nil
}

func (m *Muxer) writeBlock(track int, t time.Duration, key bool, data []byte) error {
	if m.closed {
		return errors.New("webm: closed")
	}
	if t < 0 {
		return fmt.Errorf("webm: negative timestamp %v", t)
	}
	t = t.Truncate(time.Millisecond)
	if last := m.lastTime[track]; t <= last {
		// Timecodes are milliseconds, and players want them strictly increasing per
		// track: frames captured less than 1 ms apart (a camera delivering late frames
		// back to back) move up by a millisecond. Going back further is an error.
		if t < last-orderSlack {
			return fmt.Errorf("%w: track %d at %v after %v", ErrOrder, track, t, last)
		}
		t = last + time.Millisecond
	}
	m.lastTime[track] = t
	// A new cluster at every video key frame (at the audio's key points when there is no
	// video), and whenever the relative timecode would leave its range.
	newCluster := !m.inCluster || t-m.clusterTime >= maxClusterSpan || t < m.clusterTime
	cueHere := false
	if key && (track == VideoTrack || m.cfg.Video == nil) {
		if track == VideoTrack || !m.inCluster || t-m.clusterTime >= maxClusterSpan {
			newCluster, cueHere = true, true
		}
	}
	if newCluster {
		if err := m.flushCluster(); err != nil {
			return err
		}
		m.clusterTime, m.inCluster = t, true
		if cueHere && !m.live { // a live stream has no Cues (they would grow without bound)
			m.cues = append(m.cues, cue{t: t, track: track, pos: m.pos - m.segData})
		}
		m.cluster.Reset()
		if m.live {
			// Unknown size: the cluster ends where the next one starts.
			m.cluster.Write(appendID(nil, idCluster))
			m.cluster.Write([]byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
		}
		m.cluster.Write(appendUint(nil, idTimecode, uint64(t/time.Millisecond)))
	}
	rel := (t - m.clusterTime) / time.Millisecond
	var blk []byte
	blk = append(blk, 0x80|byte(track))
	blk = binary.BigEndian.AppendUint16(blk, uint16(int16(rel)))
	flags := byte(0)
	if key {
		flags |= 0x80
	}
	blk = append(blk, flags)
	hdr := appendID(nil, idSimpleBlock)
	hdr = appendSize(hdr, len(blk)+len(data))
	m.cluster.Write(hdr)
	m.cluster.Write(blk)
	m.cluster.Write(data)
	if track == VideoTrack {
		d := time.Duration(0)
		if m.cfg.Video != nil {
			d = m.cfg.Video.FrameDuration
		}
		m.end = max(m.end, t+d)
	}
	if m.live {
		// Straight through: the cluster's head (when new) and this block.
		err := m.write(m.cluster.Bytes())
		m.cluster.Reset()
		return err
	}
	return nil
}

func (m *Muxer) flushCluster() error {
	if !m.inCluster {
		return nil
	}
	if m.live {
		m.inCluster = false
		return nil
	}
	b := appendID(nil, idCluster)
	b = appendSize(b, m.cluster.Len())
	b = append(b, m.cluster.Bytes()...)
	m.inCluster = false
	return m.write(b)
}

// Close writes the last cluster and the Cues, then fills in the Segment's size, the
// Duration and the SeekHead. It does not close the underlying writer.
func (m *Muxer) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	if err := m.flushCluster(); err != nil {
		return err
	}
	if m.live {
		return nil
	}
	cuesPos := m.pos - m.segData
	var b []byte
	if len(m.cues) > 0 {
		b = appendMaster(b, idCues, func(b []byte) []byte {
			for _, c := range m.cues {
				b = appendMaster(b, idCuePoint, func(b []byte) []byte {
					b = appendUint(b, idCueTime, uint64(c.t/time.Millisecond))
					return appendMaster(b, idCueTrackPositions, func(b []byte) []byte {
						b = appendUint(b, idCueTrack, uint64(c.track))
						return appendUint(b, idCueClusterPosition, uint64(c.pos))
					})
				})
			}
			return b
		})
		if err := m.write(b); err != nil {
			return err
		}
	}
	end := m.pos
	// Segment size.
	size := make([]byte, 8)
	binary.BigEndian.PutUint64(size, uint64(end-m.segData))
	size[0] = 0x01
	if err := m.writeAt(m.segSizeAt, size); err != nil {
		return err
	}
	// Duration, in TimecodeScale units (ms).
	dur := make([]byte, 8)
	binary.BigEndian.PutUint64(dur, math.Float64bits(float64(m.end)/float64(time.Millisecond)))
	if err := m.writeAt(m.durationAt, dur); err != nil {
		return err
	}
	// SeekHead in the reserved space, the rest stays Void.
	sh := appendMaster(nil, idSeekHead, func(b []byte) []byte {
		seek := func(b []byte, id uint32, pos int64) []byte {
			return appendMaster(b, idSeek, func(b []byte) []byte {
				b = appendBytes(b, idSeekID, appendID(nil, id))
				return appendUint(b, idSeekPosition, uint64(pos))
			})
		}
		b = seek(b, idInfo, m.infoPos)
		b = seek(b, idTracks, m.tracksPos)
		if len(m.cues) > 0 {
			b = seek(b, idCues, cuesPos)
		}
		return b
	})
	if len(sh)+2 > seekHeadReserve {
		return fmt.Errorf("webm: SeekHead of %d bytes does not fit", len(sh))
	}
	sh = appendVoid(sh, seekHeadReserve-len(sh))
	if err := m.writeAt(m.seekHeadAt, sh); err != nil {
		return err
	}
	if _, err := m.ws.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("webm: %w", err)
	}
	return nil
}

func (m *Muxer) writeAt(off int64, b []byte) error {
	if _, err := m.ws.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("webm: %w", err)
	}
	if _, err := m.w.Write(b); err != nil {
		return fmt.Errorf("webm: writing: %w", err)
	}
	return nil
}

// Duration is the media written so far.
func (m *Muxer) Duration() time.Duration { return m.end }

// EBML encoding.

func appendID(b []byte, id uint32) []byte {
	switch {
	case id >= 1<<24:
		return append(b, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<16:
		return append(b, byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<8:
		return append(b, byte(id>>8), byte(id))
	}
	return append(b, byte(id))
}

// appendSize writes a data size as the shortest EBML variable-length integer.
func appendSize(b []byte, n int) []byte {
	v := uint64(n)
	for l := 1; l <= 8; l++ {
		if v < 1<<(7*l)-1 {
			for i := l - 1; i >= 0; i-- {
				c := byte(v >> (8 * i))
				if i == l-1 {
					c |= 0x80 >> (l - 1)
				}
				b = append(b, c)
			}
			return b
		}
	}
	panic("webm: size too large")
}

func appendUint(b []byte, id uint32, v uint64) []byte {
	b = appendID(b, id)
	n := 1
	for n < 8 && v>>(8*n) != 0 {
		n++
	}
	b = appendSize(b, n)
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func appendFloat(b []byte, id uint32, v float64) []byte {
	b = appendID(b, id)
	b = append(b, 0x88)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
}

func appendString(b []byte, id uint32, s string) []byte {
	return appendBytes(b, id, []byte(s))
}

func appendBytes(b []byte, id uint32, v []byte) []byte {
	b = appendID(b, id)
	b = appendSize(b, len(v))
	return append(b, v...)
}

func appendMaster(b []byte, id uint32, body func([]byte) []byte) []byte {
	inner := body(nil)
	b = appendID(b, id)
	b = appendSize(b, len(inner))
	return append(b, inner...)
}

// appendVoid writes a Void element n bytes long in total (n ≥ 2).
func appendVoid(b []byte, n int) []byte {
	if n < 2 {
		panic("webm: void too small")
	}
	// ID (1 byte) + size: 1 byte when the body is under 127 bytes, else 8 bytes.
	if n-2 < 127 {
		b = append(b, idVoid, 0x80|byte(n-2))
		return append(b, make([]byte, n-2)...)
	}
	b = append(b, idVoid, 0x01)
	body := n - 9
	for i := 6; i >= 0; i-- {
		b = append(b, byte(body>>(8*i)))
	}
	return append(b, make([]byte, body)...)
}
