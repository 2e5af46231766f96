// Package variables implements Langflow's global variables for Go servers:
// per-user named values of type Credential (encrypted at rest with a
// secrets.Keyring, never returned by listings) or Generic (stored as given),
// a pluggable Store, the Service that applies Langflow's rules and messages,
// the import of provider keys from the process environment, and the Resolver
// that gives each field of a flow run its value.
//
// # Precedence
//
// For one field of a run, the Resolver answers with the first source that has
// a value:
//
//  1. the flow's literal value (a field not bound to a variable; an API tweak
//     replaces it) — LayerFlow;
//  2. a request override, the X-LANGFLOW-GLOBAL-VAR-<NAME> headers read by
//     OverridesFromRequest — LayerRequest;
//  3. the user's stored variable, decrypted — LayerStored;
//  4. the process environment variable of the same name, when
//     LANGFLOW_FALLBACK_TO_ENV_VAR is true (the default) — LayerEnvironment;
//  5. nothing — LayerNone.
//
// An empty field bound to no variable is filled on the server side by a
// stored variable whose default fields ("Apply To Fields") name it; Langflow
// does this only in its web UI (issue #11781).
//
// # Differences from Langflow
//
//   - (user, name) is unique in every Store; Langflow checks it in the API only.
//   - Whether a variable came from the environment is kept in Variable.Origin,
//     not guessed from updated_at > created_at, so an environment change keeps
//     propagating to rows it imported and never overwrites a row a user edited
//     (Langflow issue #14983).
//   - Changing a Generic variable to Credential encrypts its stored value;
//     Langflow leaves the plaintext in place.
//   - Service.Delete of a missing variable returns ErrNotFound, which the HTTP
//     handlers answer with 404; Langflow answers 500.
//
// # Errors
//
// Outcomes a caller handles are sentinels matched with errors.Is:
// ErrNotFound, ErrDuplicate, ErrConflict, the *ValidationError values (whose
// messages are Langflow's texts, safe to show), ErrNoUser, ErrInvalidSetting.
// A store failure comes back
// wrapping both ErrUnavailable and its cause, so a server can answer 503
// (fail closed) and log the cause.
//
// No Credential value, decrypted or not, is ever written to a log or put in
// an error message; variable names may be.
//
// The package depends on the standard library and keyflow only; to load a
// .env file into the environment first (langflow run --env-file), use
// variables/dotenv.
package variables
