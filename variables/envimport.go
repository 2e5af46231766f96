package variables

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/keyflow-dev/keyflow/envbool"
)

// Environment settings read by EnvSettingsFromEnv, ImportEnv and NewResolver
// (Langflow's names, docs/langflow-compatibility.md#environment-settings).
const (
	EnvStoreEnvironmentVariables = "LANGFLOW_STORE_ENVIRONMENT_VARIABLES"
	EnvVariablesToGet            = "LANGFLOW_VARIABLES_TO_GET_FROM_ENVIRONMENT"
	EnvFallbackToEnvVar          = "LANGFLOW_FALLBACK_TO_ENV_VAR"
)

// DefaultEnvNames is Langflow's default list of environment variables
// imported as Credential variables (VARIABLES_TO_GET_FROM_ENVIRONMENT, docs/langflow-compatibility.md#environment-settings):
// the 1.8 baseline plus the names Langflow 1.11.x adds. The agentic names that
// LANGFLOW_AGENTIC_EXPERIENCE adds (FLOW_ID, COMPONENT_ID, FIELD_NAME,
// ASTRA_TOKEN) are not included. Do not modify it.
var DefaultEnvNames = []string{
	"COMPOSIO_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "AZURE_OPENAI_API_KEY",
	"AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_API_INSTANCE_NAME", "AZURE_OPENAI_API_DEPLOYMENT_NAME",
	"AZURE_OPENAI_API_EMBEDDINGS_DEPLOYMENT_NAME", "ASTRA_DB_APPLICATION_TOKEN", "ASTRA_DB_API_ENDPOINT",
	"COHERE_API_KEY", "GROQ_API_KEY", "HUGGINGFACEHUB_API_TOKEN", "PINECONE_API_KEY", "SAMBANOVA_API_KEY",
	"SEARCHAPI_API_KEY", "SERPAPI_API_KEY", "UPSTASH_VECTOR_REST_URL", "UPSTASH_VECTOR_REST_TOKEN",
	"VECTARA_CUSTOMER_ID", "VECTARA_CORPUS_ID", "VECTARA_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"NOVITA_API_KEY", "TAVILY_API_KEY", "COMETAPI_KEY",
	// Added by Langflow 1.11.x (newest version read).
	"APIMART_API_KEY", "AZURE_AI_FOUNDRY_API_KEY", "AZURE_AI_FOUNDRY_ENDPOINT", "EMPIRIOLABS_API_KEY",
	"WATSONX_APIKEY", "WATSONX_PROJECT_ID", "WATSONX_URL", "OPENROUTER_API_KEY", "OPENROUTER_SITE_URL",
	"OPENROUTER_APP_NAME",
}

// providers maps a model-provider variable to its provider, as Langflow's
// get_model_provider_variable_mapping (reversed) in the 1.8 baseline.
var providers = map[string]string{
	"OPENAI_API_KEY":    "OpenAI",
	"ANTHROPIC_API_KEY": "Anthropic",
	"GOOGLE_API_KEY":    "Google Generative AI",
	"OLLAMA_BASE_URL":   "Ollama",
	"WATSONX_APIKEY":    "IBM WatsonX",
}

// providerNames is the set of provider names (the values of providers).
var providerNames = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range providers {
		m[p] = true
	}
	return m
}()

// ProviderDefaultFields returns the default fields the environment import
// gives a model-provider variable — [provider, "api_key"], e.g. ["OpenAI",
// "api_key"] for OPENAI_API_KEY (docs/langflow-compatibility.md#environment-import) — and false for other names.
func ProviderDefaultFields(name string) ([]string, bool) {
	p, ok := providers[name]
	if !ok {
		return nil, false
	}
	return []string{p, "api_key"}, true
}

// EnvSettings are the variable settings Langflow reads from the environment.
type EnvSettings struct {
	// StoreEnvironmentVariables: LANGFLOW_STORE_ENVIRONMENT_VARIABLES
	// (default true); false turns ImportEnv off.
	StoreEnvironmentVariables bool
	// Names: DefaultEnvNames ∪ LANGFLOW_VARIABLES_TO_GET_FROM_ENVIRONMENT
	// (comma-separated, each name trimmed, empty ones dropped), in that order
	// without duplicates.
	Names []string
	// FallbackToEnv: LANGFLOW_FALLBACK_TO_ENV_VAR (default true).
	FallbackToEnv bool
}

// ErrInvalidSetting is returned when a boolean setting is set to something
// other than true/false, 1/0, yes/no, on/off, t/f or y/n (any case), the
// empty string included, as Langflow's settings refuse it (see
// docs/langflow-compatibility.md#boolean-settings). The error names the
// variable, not its value.
var ErrInvalidSetting = errors.New("variables: invalid boolean setting")

// EnvSettingsFromEnv reads EnvSettings through lookup (nil: os.LookupEnv).
// Unset booleans take Langflow's defaults (true); set ones must be booleans
// (ErrInvalidSetting).
func EnvSettingsFromEnv(lookup func(string) (string, bool)) (EnvSettings, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var st EnvSettings
	var err error
	if st.StoreEnvironmentVariables, err = boolSetting(lookup, EnvStoreEnvironmentVariables); err != nil {
		return EnvSettings{}, err
	}
	if st.FallbackToEnv, err = boolSetting(lookup, EnvFallbackToEnvVar); err != nil {
		return EnvSettings{}, err
	}
	extra, _ := lookup(EnvVariablesToGet)
	st.Names = mergeNames(DefaultEnvNames, extra)
	return st, nil
}

// mergeNames returns defaults followed by the comma-separated, trimmed names
// in extra that are not already present. Unlike Langflow (docs/langflow-compatibility.md#environment-settings), whitespace
// around a name is removed, so "A, B" means A and B.
func mergeNames(defaults []string, extra string) []string {
	out := slices.Clone(defaults)
	for n := range strings.SplitSeq(extra, ",") {
		n = strings.TrimSpace(n)
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// boolSetting reads a boolean setting as Langflow does; unset is true (the
// default of every setting read here).
func boolSetting(lookup func(string) (string, bool), name string) (bool, error) {
	b, err := envbool.Lookup(lookup, name, true)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrInvalidSetting, err)
	}
	return b, nil
}

// EnvImportOptions configures ImportEnv.
type EnvImportOptions struct {
	// Names to import; nil: DefaultEnvNames ∪ LANGFLOW_VARIABLES_TO_GET_FROM_ENVIRONMENT
	// (read through LookupEnv).
	Names []string
	// LookupEnv looks up values and settings, as ResolverConfig.LookupEnv
	// does; nil: os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// EnvImportReport says what ImportEnv did, by variable name. It never holds
// values.
type EnvImportReport struct {
	Disabled   bool     // LANGFLOW_STORE_ENVIRONMENT_VARIABLES=false: nothing was done
	Created    []string // new Credential variables
	Updated    []string // rows imported earlier, refreshed from a changed environment
	Unchanged  []string // rows imported earlier whose value already matched
	UserEdited []string // rows a user created or edited: value left alone
	Skipped    []string // model-provider keys set to the placeholder "dummy"
	Failed     []string // rows that could not be read or written; see the returned error
}

// ImportEnv copies environment variables into the user's variables, as
// Langflow's initialize_user_variables (docs/langflow-compatibility.md#environment-import)
// with its #14983 bug fixed. It
// does nothing when LANGFLOW_STORE_ENVIRONMENT_VARIABLES is false. For each
// name that is set to a value that is non-empty once trimmed (the trimmed
// value is used), skipping model-provider keys whose value is "dummy" (any
// case):
//
//   - no variable of that name: create a Credential (OriginEnv) with the
//     provider's default fields (ProviderDefaultFields), if any;
//   - a variable the import created or refreshed (OriginEnv): update its
//     value when the environment changed, and fill its default fields when
//     empty;
//   - a variable a user created or edited (OriginUser): never overwrite the
//     value, only fill empty default fields of a provider variable.
//
// Langflow runs this at login and, since #14990, for every user at startup;
// call it for every user when the server starts. It is safe to run
// concurrently with edits: a row a user edits meanwhile is not overwritten.
// Per-variable failures do not stop the import; they are logged (by name),
// listed in Report.Failed and joined in the returned error.
func (s *Service) ImportEnv(ctx context.Context, userID string, opts EnvImportOptions) (EnvImportReport, error) {
	if err := s.ready(); err != nil {
		return EnvImportReport{}, err
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var rep EnvImportReport
	store, err := boolSetting(lookup, EnvStoreEnvironmentVariables)
	if err != nil {
		return rep, err
	}
	if !store {
		rep.Disabled = true
		return rep, nil
	}
	names := opts.Names
	if names == nil {
		extra, _ := lookup(EnvVariablesToGet)
		names = mergeNames(DefaultEnvNames, extra)
	}
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return rep, errors.Join(append(errs, err)...)
		}
		raw, ok := lookup(name)
		value := strings.TrimSpace(raw)
		if !ok || value == "" {
			continue
		}
		fields, isProvider := ProviderDefaultFields(name)
		if isProvider && strings.EqualFold(value, "dummy") {
			rep.Skipped = append(rep.Skipped, name)
			continue
		}
		outcome, err := s.importOne(ctx, userID, name, value, fields)
		if err != nil {
			s.log.Warn("variables: environment import failed", "variable", name, "err", err)
			rep.Failed = append(rep.Failed, name)
			errs = append(errs, err)
			continue
		}
		switch outcome {
		case importCreated:
			rep.Created = append(rep.Created, name)
		case importUpdated:
			rep.Updated = append(rep.Updated, name)
		case importUnchanged:
			rep.Unchanged = append(rep.Unchanged, name)
		case importUserEdited:
			rep.UserEdited = append(rep.UserEdited, name)
		}
	}
	return rep, errors.Join(errs...)
}

type importOutcome int

const (
	importCreated importOutcome = iota
	importUpdated
	importUnchanged
	importUserEdited
)

func (s *Service) importOne(ctx context.Context, userID, name, value string, fields []string) (importOutcome, error) {
	for attempt := 0; ; attempt++ {
		cur, err := s.store.GetByName(ctx, userID, name)
		if errors.Is(err, ErrNotFound) {
			_, err = s.create(ctx, userID, CreateInput{Name: name, Value: value, Type: Credential, DefaultFields: fields}, OriginEnv)
			if errors.Is(err, ErrDuplicate) && attempt+1 < maxUpdateAttempts {
				continue // created concurrently: look again
			}
			if err != nil {
				return 0, err
			}
			return importCreated, nil
		}
		if err != nil {
			return 0, fmt.Errorf("variables: import %q: %w", name, err)
		}
		next := cur
		fillFields := len(cur.DefaultFields) == 0 && len(fields) > 0
		if fillFields {
			next.DefaultFields = slices.Clone(fields)
		}
		outcome := importUserEdited
		if cur.Origin == OriginEnv {
			outcome = importUnchanged
			if plain, err := s.open(&cur); err != nil || plain != value || cur.Type != Credential {
				if next.Value, err = s.seal(Credential, value); err != nil {
					return 0, err
				}
				next.Type = Credential
				outcome = importUpdated
			} else if fillFields {
				outcome = importUpdated
			}
		}
		if outcome == importUnchanged || (outcome == importUserEdited && !fillFields) {
			return outcome, nil
		}
		// Refreshing an imported row keeps it OriginEnv; filling a user row's
		// default fields keeps it OriginUser and its value.
		next.UpdatedAt = s.timestamp()
		err = s.store.Update(ctx, cur, next)
		switch {
		case err == nil:
			return outcome, nil
		case errors.Is(err, ErrConflict) && attempt+1 < maxUpdateAttempts:
			continue
		default:
			return 0, fmt.Errorf("variables: import %q: %w", name, err)
		}
	}
}
