package feed

import (
	"strconv"
	"unsafe"

	"golang.org/x/sys/windows"
)

// timeOfDay is SYSTEM_TIMEOFDAY_INFORMATION, what NtQuerySystemInformation's
// SystemTimeOfDayInformation class returns.
type timeOfDay struct {
	BootTime      int64 // the kernel's KeBootTime, in 100 ns units since 1601
	CurrentTime   int64
	TimeZoneBias  int64
	TimeZoneID    uint32
	Reserved      uint32
	BootTimeBias  uint64 // the sum of every change of the system clock since boot
	SleepTimeBias uint64
}

// bootID names the running boot of the operating system: it changes when the
// machine restarts (after a power loss too), not when a process does.
//
// Windows has no boot UUID. It keeps the time it booted (KeBootTime), and when
// the system clock is set (by the user, by time sync, after resuming from sleep)
// it moves that time by the same step and adds the step to BootTimeBias, so
// BootTime − BootTimeBias is the clock reading taken at boot: fixed for the whole
// boot, new at the next one. Windows itself derives its boot time this way (ETW's
// boot time, Plug and Play's LastUse). It is not the uptime arithmetic of
// now − GetTickCount64, which moves with every clock adjustment and would take
// a time sync for a reboot. Two boots share the value only if the clock read the
// same at both starts, to the kernel's resolution (a dead clock battery, no time
// sync before boot); the feed then keeps the old fork where it should have made
// a new one, the same exposure Linux's boot_id does not have. Under wine the value
// is when the wineserver started, so restarting it acts as a reboot.
func bootID() string {
	var t timeOfDay
	var n uint32
	err := windows.NtQuerySystemInformation(windows.SystemTimeOfDayInformation, unsafe.Pointer(&t), uint32(unsafe.Sizeof(t)), &n)
	if err != nil || n < uint32(unsafe.Offsetof(t.SleepTimeBias)) || t.BootTime == 0 {
		return "" // unknown: every unclean exit is taken as a possible power loss
	}
	return "windows-boot-" + strconv.FormatInt(t.BootTime-int64(t.BootTimeBias), 10)
}
