package apikey

import "slices"

// Source says how a request's caller was authenticated.
type Source string

// The sources keyflow sets. A host that authenticates callers by other means
// (a session cookie, a bearer token) may use its own values.
const (
	// SourceDB: a key found in the store (Langflow's API_KEY_SOURCE=db).
	// Manager.Verify returns principals with this source.
	SourceDB Source = "db"
	// SourceEnv: the key matched LANGFLOW_API_KEY (API_KEY_SOURCE=env); the
	// caller acts as the superuser.
	SourceEnv Source = "env"
	// SourceAutoLogin: no key, LANGFLOW_AUTO_LOGIN and
	// LANGFLOW_SKIP_AUTH_AUTO_LOGIN on; the caller acts as the superuser.
	SourceAutoLogin Source = "auto-login"
)

// Principal is who a request acts for: the owner of a verified key (what
// Manager.Verify returns), or the superuser for the env key and auto-login.
// It is the one type shared by Verify, the middleware (which puts it in the
// request context) and the HTTP handlers (which are told it by a UserFunc).
type Principal struct {
	UserID  string // the user the caller acts for; "" is nobody
	KeyID   string // the verified key's record ID; "" when no stored key was used
	KeyName string // the verified key's name
	// Scopes restricts what the caller may do; nil or empty means
	// unrestricted (Langflow's keys have no scopes). Verify returns the same
	// slice to every caller for the same cached key: treat it as read-only.
	Scopes []string
	Source Source // how the caller was authenticated
}

// HasScope reports whether p may use scope: true when p.Scopes is empty (an
// unrestricted key, the env key or auto-login) or contains scope exactly.
func (p Principal) HasScope(scope string) bool {
	return len(p.Scopes) == 0 || slices.Contains(p.Scopes, scope)
}

// CanGrant reports whether p may create a key with these scopes: an
// unrestricted principal may grant anything; a scoped one only a non-empty
// subset of its own scopes (an unrestricted key would escalate it).
func (p Principal) CanGrant(scopes []string) bool {
	if len(p.Scopes) == 0 {
		return true
	}
	if len(scopes) == 0 {
		return false
	}
	for _, s := range scopes {
		if !slices.Contains(p.Scopes, s) {
			return false
		}
	}
	return true
}
