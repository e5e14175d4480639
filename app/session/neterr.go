package session

import (
	"errors"
	"syscall"
)

// Windows' socket errors, which syscall's names do not match there (its ECONNREFUSED and the
// like are values of its own on Windows).
const (
	wsaECONNREFUSED = 10061
	wsaENETUNREACH  = 10051
	wsaEHOSTUNREACH = 10065
)

// dialRefused reports whether err is a connection the other side refused: nothing listens.
func dialRefused(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == syscall.ECONNREFUSED || errno == wsaECONNREFUSED)
}

// dialNoRoute reports whether err says the host or its network cannot be reached from here.
func dialNoRoute(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == syscall.EHOSTUNREACH || errno == syscall.ENETUNREACH ||
		errno == wsaEHOSTUNREACH || errno == wsaENETUNREACH)
}
