// Package anchor is the scale anchor's workload, shared by the fan-out benchmarks of
// stream/replicate and the audience harness of stream/internal/fanoutlab: the blocks a seller
// appends (30 a second, 1.07 Mbit/s) and the CPU time the processes are judged by.
package anchor

import (
	"encoding/binary"
	mrand "math/rand/v2"
	"syscall"
	"time"
)

// Block is block i of the workload: every 60th block (a key frame) 40 KiB, the others 2 to
// 8 KiB, each starting with its append time (unix ns, little-endian) so that a viewer can
// measure append → verified.
func Block(i int, r *mrand.Rand) []byte {
	size := 2048 + r.IntN(6*1024)
	if i%60 == 0 {
		size = 40 << 10
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b, uint64(time.Now().UnixNano()))
	return b
}

// CPUSeconds is the process's user and system CPU time so far.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
