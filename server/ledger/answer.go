package ledger

import (
	"fmt"

	"github.com/tallyhq/tally/protocol"
)

// encodeAnswer encodes a request's answer as the node API sends it and the
// backend records it for repeats (see the package comment).
func encodeAnswer(resp any) ([]byte, error) {
	body, err := protocol.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return body, nil
}
