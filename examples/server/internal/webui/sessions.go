package webui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"time"
)

// The auto-login session cookie. Each value is made when it is issued and
// names its own issue time, signed with HMAC-SHA256 under a random key made
// at start-up (so a restart ends every session, and nothing is stored):
//
//	base64url( issued-at (8 bytes, Unix seconds) ‖ nonce (16 bytes) ‖ HMAC (32 bytes) )
//
// A value is accepted for sessionLifetime after it was issued (the cookie's
// Max-Age says the same to the browser). Every page load issues a new value,
// and a request that uses a value older than sessionRenewAfter gets a new one
// (Set-Cookie), so an active UI keeps working while the value in use changes
// every few minutes and a copied cookie stops working at most
// sessionLifetime after it was issued. Langflow's access token lasts one hour
// too.
const (
	sessionLifetime   = time.Hour
	sessionRenewAfter = 5 * time.Minute
	sessionTokenLen   = 8 + 16 + sha256.Size
)

// sessions issues and checks auto-login session values. It is safe for
// concurrent use.
type sessions struct {
	key [32]byte
	now func() time.Time
}

func newSessions(now func() time.Time) (*sessions, error) {
	s := &sessions{now: now}
	if s.now == nil {
		s.now = time.Now
	}
	if _, err := rand.Read(s.key[:]); err != nil {
		return nil, err
	}
	return s, nil
}

// issue returns a new session value.
func (s *sessions) issue() string {
	var b [sessionTokenLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s.now().Unix()))
	_, _ = rand.Read(b[8:24]) // crypto/rand.Read never fails (Go ≥ 1.24)
	copy(b[24:], s.mac(b[:24]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessions) mac(data []byte) []byte {
	m := hmac.New(sha256.New, s.key[:])
	m.Write(data)
	return m.Sum(nil)
}

// check reports whether value is a session value this process issued and
// that has not expired, and whether it is due for renewal. The MAC is
// compared in constant time.
func (s *sessions) check(value string) (ok, renew bool) {
	if base64.RawURLEncoding.DecodedLen(len(value)) != sessionTokenLen {
		return false, false
	}
	var b [sessionTokenLen]byte
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(value)); err != nil || n != sessionTokenLen {
		return false, false
	}
	if !hmac.Equal(b[24:], s.mac(b[:24])) {
		return false, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	age := s.now().Sub(issued)
	if age < -time.Minute || age >= sessionLifetime { // from the future: a clock step back
		return false, false
	}
	return true, age >= sessionRenewAfter
}

// setCookie sends a new session value.
func (s *sessions) setCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: s.issue(), Path: "/api/",
		MaxAge:   int(sessionLifetime / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}
