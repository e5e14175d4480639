//go:build linux

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "_cgo_export.h"

typedef void (*dv_alsa_handler)(const char *file, int line, const char *function, int err, const char *fmt, ...);
typedef void (*dv_jack_handler)(const char *msg);

static void dv_alsa_message(const char *file, int line, const char *function, int err, const char *fmt, ...) {
	char buf[512];
	int n = snprintf(buf, sizeof buf, "ALSA lib %s:%d:(%s) ", file ? file : "?", line, function ? function : "?");
	if (n < 0) n = 0;
	if (n < (int)sizeof buf) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf + n, sizeof buf - n, fmt, ap);
		va_end(ap);
	}
	(void)err;
	dvAudioMessage(buf);
}

static void dv_jack_message(const char *msg) {
	char buf[512];
	snprintf(buf, sizeof buf, "JACK %s", msg ? msg : "");
	dvAudioMessage(buf);
}

void dv_quiet_audio(void) {
	// A JACK client would otherwise try to start a server when none runs.
	setenv("JACK_NO_START_SERVER", "1", 0);
	// The handles stay open for the process's life, so the hooks stay installed in the
	// very library instances miniaudio loads later.
	void *alsa = dlopen("libasound.so.2", RTLD_NOW | RTLD_GLOBAL);
	if (alsa) {
		int (*set)(dv_alsa_handler) = (int (*)(dv_alsa_handler))dlsym(alsa, "snd_lib_error_set_handler");
		if (set) set(dv_alsa_message);
	}
	void *jack = dlopen("libjack.so.0", RTLD_NOW | RTLD_GLOBAL);
	if (jack) {
		void (*seterr)(dv_jack_handler) = (void (*)(dv_jack_handler))dlsym(jack, "jack_set_error_function");
		void (*setinfo)(dv_jack_handler) = (void (*)(dv_jack_handler))dlsym(jack, "jack_set_info_function");
		if (seterr) seterr(dv_jack_message);
		if (setinfo) setinfo(dv_jack_message);
	}
}
