package swarm

import "github.com/dazaarvision/dazaar-vision/stream/swarm/swarmwire"

// The swarm's messages live in swarmwire; these names keep swarm's API as it was.
type Have = swarmwire.Have

const (
	MaxHave          = swarmwire.MaxHave
	MaxRedirectPeers = swarmwire.MaxRedirectPeers
	NoDepth          = swarmwire.NoDepth
)

var errMalformed = swarmwire.ErrMalformed
