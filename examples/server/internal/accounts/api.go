package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/examples/internal/ids"
	"github.com/keyflow-dev/keyflow/examples/server/internal/auditing"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpapi"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables"
	"strconv"
)

// API is the users' HTTP API: GET /api/v1/users/whoami, and for
// superusers GET and POST /api/v1/users/ and PATCH /api/v1/users/{user_id},
// as Langflow has them. Its handlers expect an authenticated principal.
type API struct {
	Users           *Service
	NewUserIsActive bool // LANGFLOW_NEW_USER_IS_ACTIVE
	// RevokeTokens logs a user out everywhere (package login): when the
	// user is deactivated or gets a new password.
	RevokeTokens func(ctx context.Context, userID string) error
	// KeyLimited reports whether an API key has usage limits
	// (apikey.Manager.KeyLimited); nil: no key has. A caller authenticated
	// by such a key may not create users or change them: a new password or
	// a new user logs in and makes keys without limits.
	KeyLimited func(keyID string) bool
	Log        *slog.Logger
	// Audit records users created and changed, before the change is made;
	// a failure to record refuses it (503). nil: nothing is recorded.
	Audit *auditing.Auditor
}

// record records the superuser caller's action on a user, before it is made.
func (a *API) record(r *http.Request, caller User, action audit.Action, target audit.Target, details map[string]string) (audit.Event, error) {
	p, _ := middleware.FromRequest(r)
	e := audit.Event{Action: action, Actor: auditing.Actor(p, caller.Username, string(p.Source)), Target: target, Details: details}
	if a.Audit == nil {
		return e, nil
	}
	return e, a.Audit.Record(r, e)
}

// recordFailure records that an action recorded beforehand did not happen.
func (a *API) recordFailure(r *http.Request, e audit.Event, reason string) {
	if a.Audit != nil {
		e.Outcome, e.Reason = audit.Failure, reason
		_ = a.Audit.Record(r, e) // logged; nothing was changed
	}
}

// MsgLimitedCaller answers (403) a caller authenticated by an API key with
// usage limits on the routes that create or change users.
const MsgLimitedCaller = "An API key with usage limits cannot create or change users"

// UserRead is a user as the API shows it: Langflow's UserRead (its "create_at" spelling included).
type UserRead struct {
	ID           string          `json:"id"`
	Username     string          `json:"username"`
	ProfileImage *string         `json:"profile_image"`
	StoreAPIKey  *string         `json:"store_api_key"`
	IsActive     bool            `json:"is_active"`
	IsSuperuser  bool            `json:"is_superuser"`
	CreateAt     time.Time       `json:"create_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	LastLoginAt  *time.Time      `json:"last_login_at"`
	Optins       map[string]bool `json:"optins"`
}

func toUserJSON(a User) UserRead {
	upd := a.CreatedAt
	if a.UpdatedAt != nil {
		upd = *a.UpdatedAt
	}
	return UserRead{
		ID: a.ID, Username: a.Username, IsActive: a.IsActive, IsSuperuser: a.IsSuperuser,
		CreateAt: a.CreatedAt, UpdatedAt: upd, LastLoginAt: a.LastLoginAt,
		Optins: map[string]bool{"github_starred": false, "dialog_dismissed": false, "discord_clicked": false},
	}
}

// currentUser returns the authenticated caller's user, answering 503 or
// 401 itself (and reporting false) when it cannot.
func (a *API) currentUser(w http.ResponseWriter, r *http.Request) (User, bool) {
	caller, _ := middleware.FromRequest(r)
	id := caller.UserID
	acct, err := a.Users.Fresh(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		httpjson.Detail(w, http.StatusUnauthorized, "User not found or is inactive.")
		return User{}, false
	case err != nil:
		httpapi.StoreUnavailable(a.Log, w, r, "read user", err)
		return User{}, false
	case !acct.IsActive:
		httpjson.Detail(w, http.StatusUnauthorized, "Inactive user")
		return User{}, false
	}
	return acct, true
}

// currentSuperuser is currentUser for superuser-only routes: 403 "The
// user doesn't have enough privileges" for anybody else, as in Langflow.
func (a *API) currentSuperuser(w http.ResponseWriter, r *http.Request) (User, bool) {
	acct, ok := a.currentUser(w, r)
	if ok && !acct.IsSuperuser {
		httpjson.Detail(w, http.StatusForbidden, "The user doesn't have enough privileges")
		return User{}, false
	}
	return acct, ok
}

// currentAdmin is currentSuperuser for the routes that create or change
// users: 403 MsgLimitedCaller for a caller whose API key has usage limits,
// which could otherwise set a password, log in and escape them.
func (a *API) currentAdmin(w http.ResponseWriter, r *http.Request) (User, bool) {
	acct, ok := a.currentSuperuser(w, r)
	if !ok {
		return User{}, false
	}
	if caller, _ := middleware.FromRequest(r); a.KeyLimited != nil && caller.KeyID != "" && a.KeyLimited(caller.KeyID) {
		httpjson.Detail(w, http.StatusForbidden, MsgLimitedCaller)
		return User{}, false
	}
	return acct, true
}

// Whoami is GET /api/v1/users/whoami: the caller as Langflow's UserRead.
func (a *API) Whoami(w http.ResponseWriter, r *http.Request) {
	if acct, ok := a.currentUser(w, r); ok {
		httpjson.Write(w, http.StatusOK, toUserJSON(acct))
	}
}

// Create is POST /api/v1/users/ {"username", "password"} by a
// superuser → 201 UserRead; the new user is active only with
// LANGFLOW_NEW_USER_IS_ACTIVE; a name in use → 400 "This username is
// unavailable."; a caller whose API key has usage limits → 403
// MsgLimitedCaller.
func (a *API) Create(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.currentAdmin(w, r)
	if !ok {
		return
	}
	if a.Users.OnLangflow() {
		httpjson.Detail(w, http.StatusBadRequest, MsgUsersInLangflow)
		return
	}
	username, h, ok := newUserBody(w, r)
	if !ok {
		return
	}
	ev, err := a.record(r, caller, audit.UserCreated, auditing.UserTarget("", username),
		map[string]string{"active": strconv.FormatBool(a.NewUserIsActive)})
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "record user creation", err)
		return
	}
	acct, err := a.Users.Store.Create(r.Context(), username, h, false, a.NewUserIsActive)
	switch {
	case errors.Is(err, ErrUsernameTaken):
		a.recordFailure(r, ev, "username unavailable")
		httpjson.Detail(w, http.StatusBadRequest, "This username is unavailable.")
		return
	case err != nil:
		a.recordFailure(r, ev, "store unavailable")
		httpapi.StoreUnavailable(a.Log, w, r, "create user", err)
		return
	}
	a.Log.Info("created user", "username", acct.Username, "active", acct.IsActive)
	if err := a.Users.ImportEnv(r.Context(), acct.ID, acct.Username); err != nil {
		a.Log.Warn("import environment variables for new user", "username", acct.Username, "err", err)
	}
	httpjson.Write(w, http.StatusCreated, toUserJSON(acct))
}

// newUserBody reads and checks the body of a user creation, answering 422
// or 400 itself (and reporting false) when it is refused; it returns the
// username and the password's bcrypt hash.
func newUserBody(w http.ResponseWriter, r *http.Request) (username, hash string, ok bool) {
	var in struct {
		Username *string `json:"username"`
		Password *string `json:"password"`
	}
	if !httpjson.Decode(w, r, &in) {
		return "", "", false
	}
	switch {
	case in.Username == nil || in.Password == nil:
		missing := "username"
		if in.Username != nil {
			missing = "password"
		}
		httpapi.ValidationError(w, "missing", []string{"body", missing}, "Field required")
		return "", "", false
	case strings.TrimSpace(*in.Username) == "":
		httpjson.Detail(w, http.StatusBadRequest, "Username cannot be empty")
		return "", "", false
	case variables.ValidateName(*in.Username) != nil:
		httpjson.Detail(w, http.StatusBadRequest, "Username must be valid UTF-8 without control characters, at most 255 bytes")
		return "", "", false
	case *in.Password == "":
		httpjson.Detail(w, http.StatusBadRequest, "Password cannot be empty")
		return "", "", false
	}
	h, err := HashPassword(*in.Password)
	if err != nil {
		httpjson.Detail(w, http.StatusBadRequest, "Password must be at most 72 bytes")
		return "", "", false
	}
	return *in.Username, h, true
}

// List is GET /api/v1/users/?skip=&limit=&search= by a superuser:
// {"total_count", "users": [UserRead]}; search keeps the usernames that
// contain it, ignoring case, as Langflow's does, and total_count counts them.
func (a *API) List(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.currentSuperuser(w, r); !ok {
		return
	}
	skip, limit, ok := pageParams(w, r)
	if !ok {
		return
	}
	all, err := a.Users.Store.All(r.Context())
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "list users", err)
		return
	}
	if search := strings.ToLower(r.URL.Query().Get("search")); search != "" {
		matching := all[:0]
		for _, acct := range all {
			if strings.Contains(strings.ToLower(acct.Username), search) {
				matching = append(matching, acct)
			}
		}
		all = matching
	}
	page := []UserRead{}
	for i := skip; i < len(all) && len(page) < limit; i++ {
		page = append(page, toUserJSON(all[i]))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"total_count": len(all), "users": page})
}

// Patch is PATCH /api/v1/users/{user_id} by a superuser: username,
// is_active, is_superuser and password, each optional. As in Langflow, a
// caller cannot deactivate themselves (403), nor change anybody with an API
// key that has usage limits (403 MsgLimitedCaller). (Langflow also lets users edit
// their own profile; keyflow has no profile.)
func (a *API) Patch(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.currentAdmin(w, r)
	if !ok {
		return
	}
	if a.Users.OnLangflow() {
		httpjson.Detail(w, http.StatusBadRequest, MsgUsersInLangflow)
		return
	}
	id := r.PathValue("user_id")
	if !ids.Valid(id) {
		httpapi.ValidationError(w, "uuid_parsing", []string{"path", "user_id"}, "Input should be a valid UUID")
		return
	}
	c, ok := patchChanges(w, r, caller.ID, id)
	if !ok {
		return
	}
	name, details := a.changeDetails(r, id, c)
	ev, err := a.record(r, caller, audit.UserChanged, auditing.UserTarget(id, name), details)
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "record user change", err)
		return
	}
	if !a.update(w, r, id, c, ev) {
		return
	}
	if c.IsActive != nil && !*c.IsActive || c.PasswordHash != nil {
		// A deactivated user, or one whose password changed, is logged out
		// everywhere.
		if err := a.RevokeTokens(r.Context(), id); err != nil {
			httpapi.StoreUnavailable(a.Log, w, r, "revoke tokens", err)
			return
		}
	}
	acct, err := a.Users.Store.ByID(r.Context(), id)
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "read user", err)
		return
	}
	httpjson.Write(w, http.StatusOK, toUserJSON(acct))
}

// changeDetails describes the change c to user id for its audit event
// (never a password or its hash), with the user's name.
func (a *API) changeDetails(r *http.Request, id string, c Changes) (name string, details map[string]string) {
	details = map[string]string{}
	if c.Username != nil {
		details["username"], name = *c.Username, *c.Username
	}
	if c.IsActive != nil {
		details["is_active"] = strconv.FormatBool(*c.IsActive)
	}
	if c.IsSuperuser != nil {
		details["is_superuser"] = strconv.FormatBool(*c.IsSuperuser)
	}
	if c.PasswordHash != nil {
		details["password"] = "changed" // never the password or its hash
	}
	if name == "" {
		if cur, err := a.Users.Store.ByID(r.Context(), id); err == nil {
			name = cur.Username
		}
	}
	return name, details
}

// update makes the change c recorded by ev, answering (and recording a
// failure) itself when it fails; it reports whether it was made.
func (a *API) update(w http.ResponseWriter, r *http.Request, id string, c Changes, ev audit.Event) bool {
	err := a.Users.Store.Update(r.Context(), id, c)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrNotFound):
		a.recordFailure(r, ev, "user not found")
		httpjson.Detail(w, http.StatusNotFound, "User not found")
	case errors.Is(err, ErrUsernameTaken):
		a.recordFailure(r, ev, "username unavailable")
		httpjson.Detail(w, http.StatusBadRequest, "This username is unavailable.")
	default:
		a.recordFailure(r, ev, "store unavailable")
		httpapi.StoreUnavailable(a.Log, w, r, "update user", err)
	}
	return false
}

// patchChanges reads and checks a PATCH body, answering 422, 400 or 403
// itself (and reporting false) when it is refused: nobody deactivates
// themselves, a new username passes the name check, a new password is
// hashed (an empty one changes nothing).
func patchChanges(w http.ResponseWriter, r *http.Request, callerID, id string) (Changes, bool) {
	var in struct {
		Username    *string `json:"username"`
		IsActive    *bool   `json:"is_active"`
		IsSuperuser *bool   `json:"is_superuser"`
		Password    *string `json:"password"`
	}
	if !httpjson.Decode(w, r, &in) {
		return Changes{}, false
	}
	if in.IsActive != nil && !*in.IsActive && strings.EqualFold(id, callerID) {
		// As Langflow: nobody deactivates themselves (the last superuser
		// would lock everybody out).
		httpjson.Detail(w, http.StatusForbidden, "You can't deactivate your own user account")
		return Changes{}, false
	}
	if in.Username != nil {
		switch {
		case strings.TrimSpace(*in.Username) == "":
			httpjson.Detail(w, http.StatusBadRequest, "Username cannot be empty")
			return Changes{}, false
		case variables.ValidateName(*in.Username) != nil:
			httpjson.Detail(w, http.StatusBadRequest, "Username must be valid UTF-8 without control characters, at most 255 bytes")
			return Changes{}, false
		}
	}
	c := Changes{Username: in.Username, IsActive: in.IsActive, IsSuperuser: in.IsSuperuser}
	if in.Password != nil && *in.Password != "" {
		h, err := HashPassword(*in.Password)
		if err != nil {
			httpjson.Detail(w, http.StatusBadRequest, "Password must be at most 72 bytes")
			return Changes{}, false
		}
		c.PasswordHash = &h
	}
	return c, true
}

// pageParams reads ?skip= (default 0) and ?limit= (default 10), answering
// 422 for a value that is not a non-negative integer.
func pageParams(w http.ResponseWriter, r *http.Request) (skip, limit int, ok bool) {
	skip, limit = 0, 10
	for _, p := range []struct {
		name string
		dst  *int
	}{{"skip", &skip}, {"limit", &limit}} {
		v := r.URL.Query().Get(p.name)
		if v == "" {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != v {
			httpapi.ValidationError(w, "int_parsing", []string{"query", p.name}, "Input should be a valid integer, unable to parse string as an integer")
			return 0, 0, false
		}
		*p.dst = n
	}
	return skip, limit, true
}
