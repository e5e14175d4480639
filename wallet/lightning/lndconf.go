package lightning

import (
	"os"
	"strings"
)

// RESTListenFromConf reads restlisten= from lnd.conf, if there is one.
func RESTListenFromConf(conf string) string {
	b, err := os.ReadFile(conf)
	if err != nil {
		return ""
	}
	return restListenIn(string(b))
}

// restListenIn is RESTListenFromConf over lnd.conf's text: the value of the first restlisten=
// line, trimmed, a bare :port taken as 127.0.0.1:port; "" when there is none.
func restListenIn(text string) string {
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && strings.TrimSpace(k) == "restlisten" {
			v = strings.TrimSpace(v)
			if strings.HasPrefix(v, ":") {
				v = "127.0.0.1" + v
			}
			return v
		}
	}
	return ""
}
