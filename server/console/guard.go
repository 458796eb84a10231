package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
)

// Body bounds of the console's forms: a license upload carries files, every
// other form a few fields.
const (
	maxFormBytes   = 64 << 10
	maxUploadBytes = 4 << 20
)

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// csrfToken is the form token of the session on r: an HMAC of its cookie
// under a key made at start, so it needs no storage and ends with the
// session.
func (c *Console) csrfToken(r *http.Request) string {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return ""
	}
	mac := hmac.New(sha256.New, c.csrfKey)
	mac.Write([]byte("tally console form v1\x00"))
	mac.Write([]byte(ck.Value))
	return hex.EncodeToString(mac.Sum(nil))
}

var errForged = errors.New("this form did not come from this console's page (cross-site or stale): reload the page and try again")

// action guards a route that changes something: signed in, a same-origin
// request (Origin and Sec-Fetch-Site), the session's form token, and the
// permission to change what. A refused request changes nothing.
func (c *Console) action(what string, h http.HandlerFunc) http.Handler {
	return c.signedIn(func(w http.ResponseWriter, r *http.Request) {
		if err := c.cross.Check(r); err != nil {
			c.refuse(w, r, http.StatusForbidden, errForged.Error())
			return
		}
		limit := int64(maxFormBytes)
		if what == changeLicenses {
			limit = maxUploadBytes
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		var err error
		if ct == "multipart/form-data" {
			err = r.ParseMultipartForm(limit)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				c.refuse(w, r, http.StatusRequestEntityTooLarge, "the form is too large")
				return
			}
			c.refuse(w, r, http.StatusBadRequest, "the form could not be read: "+err.Error())
			return
		}
		want := c.csrfToken(r)
		if want == "" || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(want)) {
			c.refuse(w, r, http.StatusForbidden, errForged.Error())
			return
		}
		if !c.canChange(r, what) {
			c.refuse(w, r, http.StatusForbidden, "your role may not change "+what)
			return
		}
		h(w, r)
	})
}
