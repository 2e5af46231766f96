package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/keyflow-dev/keyflow/internal/httpjson"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/middleware"
)

// Who may act is decided on every request from the users table as it is at
// that moment: a user deactivated (or, on a Langflow database, deleted or
// given a new password in Langflow) loses their login tokens and API keys at
// once, on every instance. On a Langflow database the user is read from
// Langflow's own table each time and the mirror updated with it, so that
// nothing this server copied at start (is_active, the password hash) can
// outlive a change made in Langflow.

// accountByID returns the user with that ID as it is now, or
// errUserNotFound.
func (a *app) accountByID(ctx context.Context, id string) (account, error) {
	if a.langflow != nil {
		lu, err := a.langflow.db.UserByID(ctx, id)
		return a.fromLangflow(ctx, lu, err)
	}
	return a.store.accountByID(ctx, id)
}

// accountByName is accountByID by username.
func (a *app) accountByName(ctx context.Context, username string) (account, error) {
	if a.langflow != nil {
		lu, err := a.langflow.db.UserByName(ctx, username)
		return a.fromLangflow(ctx, lu, err)
	}
	return a.store.accountByName(ctx, username)
}

// fromLangflow returns Langflow's user lu (read with error err) as an
// account, updating the mirror first when it differs; a user Langflow does
// not have is errUserNotFound, whatever the mirror still holds.
func (a *app) fromLangflow(ctx context.Context, lu langflowdb.User, err error) (account, error) {
	switch {
	case errors.Is(err, langflowdb.ErrUserNotFound):
		return account{}, errUserNotFound
	case err != nil:
		return account{}, err
	}
	acct, err := a.store.accountByID(ctx, lu.ID)
	switch {
	case err == nil && acct.Username == lu.Username && acct.IsSuperuser == lu.IsSuperuser &&
		acct.PasswordHash == lu.PasswordHash && acct.IsActive == lu.IsActive:
		return acct, nil
	case err != nil && !errors.Is(err, errUserNotFound):
		return account{}, err
	}
	if err := a.store.mirrorUser(ctx, lu); err != nil {
		return account{}, err
	}
	return a.store.accountByID(ctx, lu.ID)
}

// msgKeyUserInactive answers an API key whose user is inactive or gone
// (the newest Langflow's message).
const msgKeyUserInactive = "User account is inactive"

// activeKeyUser lets through a request authenticated by an API key
// (apikey.SourceDB, or LANGFLOW_API_KEY) or by auto-login (the UI session,
// LANGFLOW_SKIP_AUTH_AUTO_LOGIN) only while its user exists and is active
// (403 msgKeyUserInactive otherwise), as the newest Langflow does; the keys
// themselves are left as they are, so they work again if the user is
// reactivated. Requests without a principal, and those of login tokens
// (which tokenAuth checks), pass unchanged. A database failure is 503 (fail
// closed).
func (a *app) activeKeyUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := middleware.FromContext(r.Context())
		if !ok || p.Source == sourceLogin {
			next.ServeHTTP(w, r)
			return
		}
		acct, err := a.accountByID(r.Context(), p.UserID)
		switch {
		case errors.Is(err, errUserNotFound) || err == nil && !acct.IsActive:
			httpjson.Detail(w, http.StatusForbidden, msgKeyUserInactive)
		case err != nil:
			a.storeUnavailable(w, r, "check key user", err)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// msgUsersInLangflow answers a change to users on a Langflow database.
const msgUsersInLangflow = "Users are managed in Langflow: this server serves on a Langflow database and only reads its users"

// usersReadOnly refuses, on a Langflow database, the routes that create or
// change users (400 msgUsersInLangflow): such a change would be made to the
// mirror only and undone by the next read of Langflow's table.
func (a *app) usersReadOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.langflow != nil {
			httpjson.Detail(w, http.StatusBadRequest, msgUsersInLangflow)
			return
		}
		next.ServeHTTP(w, r)
	})
}
