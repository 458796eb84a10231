package protocol

import (
	"encoding/json"
	"fmt"
)

// Verdict is the server's final word on one product's data in one request.
// A discard is an answer, not an error: the agent does not retry it.
// Values are append-only.
type Verdict uint8

// Verdicts of DESIGN §3.
const (
	VerdictNotApplicable              Verdict = 0 // the request carried nothing for this product
	VerdictLicensed                   Verdict = 1
	VerdictDiscardedNoSeat            Verdict = 2
	VerdictDiscardedExpired           Verdict = 3
	VerdictDiscardedUpgradeProtection Verdict = 4
	VerdictDiscardedRetired           Verdict = 5
	VerdictDeniedNoSeat               Verdict = 6
)

var verdictNames = [...]string{
	VerdictNotApplicable:              "not-applicable",
	VerdictLicensed:                   "licensed",
	VerdictDiscardedNoSeat:            "discarded:no-seat",
	VerdictDiscardedExpired:           "discarded:expired",
	VerdictDiscardedUpgradeProtection: "discarded:upgrade-protection",
	VerdictDiscardedRetired:           "discarded:retired",
	VerdictDeniedNoSeat:               "denied:no-seat",
}

// String returns the verdict's name as the documentation spells it.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// ParseVerdict is the inverse of String.
func ParseVerdict(s string) (Verdict, error) {
	for i, n := range verdictNames {
		if n == s {
			return Verdict(i), nil
		}
	}
	return 0, fmt.Errorf("unknown verdict %q", s)
}

// Known reports whether the verdict is one this build knows.
func (v Verdict) Known() bool { return int(v) < len(verdictNames) }

// Discarded reports whether the product data was not stored.
func (v Verdict) Discarded() bool {
	return v == VerdictDiscardedNoSeat || v == VerdictDiscardedExpired ||
		v == VerdictDiscardedUpgradeProtection || v == VerdictDiscardedRetired || v == VerdictDeniedNoSeat
}

// MarshalJSON writes the verdict's name.
func (v Verdict) MarshalJSON() ([]byte, error) { return json.Marshal(v.String()) }

// UnmarshalJSON reads a verdict's name.
func (v *Verdict) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := ParseVerdict(s)
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// ProductVerdict is the verdict for one product.
type ProductVerdict struct {
	Product string  `cbor:"1,keyasint" json:"product"`
	Verdict Verdict `cbor:"2,keyasint" json:"verdict"`
	// Reason is a sentence for the admin or the agent's status, e.g. which
	// license expired. Optional.
	Reason string `cbor:"3,keyasint,omitempty" json:"reason,omitempty"`
}
