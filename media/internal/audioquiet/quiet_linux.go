//go:build linux

package audioquiet

/*
#cgo LDFLAGS: -ldl
void dv_quiet_audio(void);
*/
import "C"

func install() { C.dv_quiet_audio() }

//export dvAudioMessage
func dvAudioMessage(msg *C.char) { message(C.GoString(msg)) }
