package variables

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
)

// Layer says which layer gave a field its value.
type Layer string

const (
	LayerFlow        Layer = "flow"        // the literal flow value (or API tweak)
	LayerRequest     Layer = "request"     // an X-LANGFLOW-GLOBAL-VAR-<NAME> override
	LayerStored      Layer = "stored"      // the user's stored variable
	LayerEnvironment Layer = "environment" // the process environment
	LayerNone        Layer = "none"        // nothing: Value is ""
)

// ErrNoUser is returned when Resolve needs the stored variables of a run
// without a user (Langflow: "User id is not set", always raised).
var ErrNoUser = errors.New("variables: user id is not set for the run")

// Field is one input of a component in a flow run.
type Field struct {
	// Name is the component field, e.g. "api_key". A Credential variable is
	// refused for a field named "session_id".
	Name string
	// Variable is the global variable the field is bound to (Langflow's
	// load_from_db with the variable name as value); "" if none.
	Variable string
	// Value is the literal flow value (or API tweak), used when Variable is
	// "" and Value is not.
	Value string
	// DisplayName is the field's label in the editor (e.g. "OpenAI API
	// Key"); optional. Default fields match it as well as Name.
	DisplayName string
	// Component is the component's provider or name (e.g. "OpenAI");
	// optional. A variable whose default fields name a model provider (e.g.
	// ["OpenAI", "api_key"], as imported from the environment) fills only
	// fields of that provider's components.
	Component string
}

// Resolution is the value of one field and where it came from.
type Resolution struct {
	Field    string // Field.Name
	Variable string // the variable that answered ("" for LayerFlow)
	Value    string // the plaintext value; "" for LayerNone
	Layer    Layer  // which layer answered
}

// EnvFallback says whether a Resolver reads the environment for variables
// the store does not have (Langflow's LANGFLOW_FALLBACK_TO_ENV_VAR).
type EnvFallback int

const (
	// EnvFallbackFromEnv, the default, reads LANGFLOW_FALLBACK_TO_ENV_VAR
	// through ResolverConfig.LookupEnv: on when unset, as in Langflow.
	EnvFallbackFromEnv EnvFallback = iota
	// EnvFallbackOn turns the environment layer on.
	EnvFallbackOn
	// EnvFallbackOff turns it off.
	EnvFallbackOff
)

// ResolverConfig configures a Resolver. Service is required.
type ResolverConfig struct {
	// Service reads the user's stored variables (required; from NewService).
	Service *Service
	// EnvFallback enables the environment layer; the zero value reads
	// LANGFLOW_FALLBACK_TO_ENV_VAR (true when unset).
	EnvFallback EnvFallback
	// LookupEnv reads the environment; nil: os.LookupEnv. Tests inject a map
	// lookup instead of calling os.Setenv.
	LookupEnv func(string) (string, bool)
}

// Resolver gives the fields of a flow run their values with the precedence
// flow value > request override > stored variable > environment > none. It is
// safe for concurrent use.
type Resolver struct {
	svc      *Service
	fallback bool
	lookup   func(string) (string, bool)
}

// protectedEnv are process variables the environment layer never returns,
// whatever a flow asks for: the master secret and other server credentials
// (as newer Langflow refuses "protected process secrets").
var protectedEnv = []string{
	"LANGFLOW_SECRET_KEY", "KEYFLOW_PREVIOUS_SECRET_KEYS", "LANGFLOW_API_KEY",
	"LANGFLOW_SUPERUSER_PASSWORD", "LANGFLOW_DATABASE_URL", "KEYFLOW_TEST_POSTGRES_DSN",
}

// NewResolver returns a Resolver. It fails without a Service, with an
// unknown EnvFallback, or when LANGFLOW_FALLBACK_TO_ENV_VAR is needed and set
// to something that is not a boolean (ErrInvalidSetting; see
// EnvSettingsFromEnv).
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	if cfg.Service == nil {
		return nil, fmt.Errorf("variables: ResolverConfig.Service is required")
	}
	r := &Resolver{svc: cfg.Service, lookup: cfg.LookupEnv}
	if r.lookup == nil {
		r.lookup = os.LookupEnv
	}
	switch cfg.EnvFallback {
	case EnvFallbackOn:
		r.fallback = true
	case EnvFallbackOff:
	case EnvFallbackFromEnv:
		var err error
		if r.fallback, err = boolSetting(r.lookup, EnvFallbackToEnvVar); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("variables: ResolverConfig.EnvFallback %d is unknown", cfg.EnvFallback)
	}
	return r, nil
}

// Resolve returns one Resolution per field, in order, for the user's run.
// overrides are the request-level values by variable name (see
// OverridesFromRequest); nil means none. For each field:
//
//   - bound to no variable with a non-empty Value: that value (LayerFlow);
//   - bound to variable N: overrides[N] if present (LayerRequest), else the
//     user's variable N if it exists with a non-empty value, decrypted
//     (LayerStored), else the environment variable N when the fallback is on
//     and it is non-empty (LayerEnvironment), else LayerNone;
//   - bound to no variable and empty: filled by the first (oldest) of the
//     user's variables whose DefaultFields name it (see Field.Component),
//     reported as LayerStored; LayerNone if none does.
//
// The store is read at most once per call, whatever the number of fields,
// and not at all when the Service caches the user's variables
// (ServiceConfig.Changes).
// Errors: ErrNoUser when userID is "" and the store is needed; a Credential
// variable bound to a field named "session_id" (ErrCredentialSessionID, with
// Langflow's message); a Credential that does not decrypt (wrapping
// secrets.ErrInvalidToken); a store failure (wrapping ErrUnavailable). Errors
// name variables, never values. Nothing is logged.
func (r *Resolver) Resolve(ctx context.Context, userID string, fields []Field, overrides map[string]string) ([]Resolution, error) {
	if r == nil || r.svc == nil {
		return nil, ErrUninitialized
	}
	out, needStore := resolveWithoutStore(fields, overrides)
	if !needStore {
		return out, nil
	}
	if userID == "" {
		return nil, ErrNoUser
	}
	uv, err := r.svc.listForRun(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("variables: resolve: %w", err)
	}
	for i, f := range fields {
		if out[i].Layer != LayerNone {
			continue
		}
		if err := r.resolveFromStore(&out[i], f, uv); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolveWithoutStore answers the fields that the flow value or a request
// override decides; the others stay LayerNone, and needStore reports whether
// there are any.
func resolveWithoutStore(fields []Field, overrides map[string]string) (out []Resolution, needStore bool) {
	out = make([]Resolution, len(fields))
	for i, f := range fields {
		out[i] = Resolution{Field: f.Name, Variable: f.Variable, Layer: LayerNone}
		switch {
		case f.Variable == "" && f.Value != "":
			out[i].Value, out[i].Layer = f.Value, LayerFlow
		case f.Variable != "":
			if v, ok := overrides[f.Variable]; ok {
				out[i].Value, out[i].Layer = v, LayerRequest
				continue
			}
			needStore = true
		default:
			needStore = true
		}
	}
	return out, needStore
}

// resolveFromStore answers field f from the user's variables vars, else from
// the environment: an unbound field from the variable whose default fields
// name it, a bound one from its variable, then the environment fallback.
func (r *Resolver) resolveFromStore(res *Resolution, f Field, uv *userVars) error {
	vars := uv.vars
	if f.Variable == "" {
		v := defaultFor(vars, f)
		if v == nil {
			return nil
		}
		plain, err := uv.open(r.svc, v)
		if err != nil {
			return err
		}
		res.Variable, res.Value, res.Layer = v.Name, plain, LayerStored
		return nil
	}
	if v := byName(vars, f.Variable); v != nil && v.Value != "" {
		if v.Type == Credential && f.Name == "session_id" {
			return credentialSessionIDError(v.Name)
		}
		plain, err := uv.open(r.svc, v)
		if err != nil {
			return err
		}
		res.Value, res.Layer = plain, LayerStored
		return nil
	}
	if r.fallback && !isProtected(f.Variable) {
		if val, ok := r.lookup(f.Variable); ok && val != "" {
			res.Value, res.Layer = val, LayerEnvironment
		}
	}
	return nil
}

func byName(vars []Variable, name string) *Variable {
	for i := range vars {
		if vars[i].Name == name {
			return &vars[i]
		}
	}
	return nil
}

// defaultFor returns the oldest variable whose default fields apply to the
// empty, unbound field f, or nil. A variable whose default fields name a
// model provider applies only to fields of that provider's components. A
// Credential is never applied to a session_id field, and a variable with an
// empty value never applies.
func defaultFor(vars []Variable, f Field) *Variable {
	for i := range vars {
		v := &vars[i]
		if len(v.DefaultFields) == 0 || v.Value == "" {
			continue
		}
		if !slices.Contains(v.DefaultFields, f.Name) && (f.DisplayName == "" || !slices.Contains(v.DefaultFields, f.DisplayName)) {
			continue
		}
		if scoped(v.DefaultFields) && (f.Component == "" || !slices.Contains(v.DefaultFields, f.Component)) {
			continue
		}
		if v.Type == Credential && f.Name == "session_id" {
			continue
		}
		return v
	}
	return nil
}

func scoped(fields []string) bool {
	for _, f := range fields {
		if providerNames[f] {
			return true
		}
	}
	return false
}

func isProtected(name string) bool {
	for _, p := range protectedEnv {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return false
}

// overridePrefix is the lower-cased prefix of the override headers.
const overridePrefix = "x-langflow-global-var-"

// OverridesFromRequest returns the request-level variable overrides carried
// by X-LANGFLOW-GLOBAL-VAR-<NAME> headers, as Langflow's /api/v1/run does
// (docs/langflow-compatibility.md#variable-precedence): the header name is lower-cased, the prefix removed and the rest
// upper-cased, so X-LANGFLOW-GLOBAL-VAR-API-KEY overrides the variable
// "API-KEY" (dashes are not turned into underscores). When a header repeats,
// the last value wins. Headers with an empty name or value are ignored. It
// returns nil when there are none.
func OverridesFromRequest(r *http.Request) map[string]string {
	if r == nil {
		return nil
	}
	var out map[string]string
	for k, vals := range r.Header {
		if len(k) <= len(overridePrefix) || !strings.EqualFold(k[:len(overridePrefix)], overridePrefix) || len(vals) == 0 {
			continue
		}
		v := vals[len(vals)-1]
		if v == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		// Lower, then upper, as Python's .lower().upper(): for a few runes
		// (e.g. the Kelvin sign) this differs from ToUpper alone.
		out[strings.ToUpper(strings.ToLower(k[len(overridePrefix):]))] = v
	}
	return out
}
