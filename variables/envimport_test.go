package variables_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/sqlstore"
)

func TestEnvSettingsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       envMap
		store     bool
		fallback  bool
		extra     []string // names expected after the defaults
		wantError bool
	}{
		{name: "defaults", env: envMap{}, store: true, fallback: true},
		{name: "list is added to the defaults, trimmed (unlike Langflow)", env: envMap{variables.EnvVariablesToGet: "A, B ,,OPENAI_API_KEY, A"}, store: true, fallback: true, extra: []string{"A", "B"}},
		{name: "switches off", env: envMap{variables.EnvStoreEnvironmentVariables: "false", variables.EnvFallbackToEnvVar: "0"}, store: false, fallback: false},
		{name: "pydantic spellings", env: envMap{variables.EnvStoreEnvironmentVariables: "Off", variables.EnvFallbackToEnvVar: "YES"}, store: false, fallback: true},
		{name: "invalid boolean", env: envMap{variables.EnvFallbackToEnvVar: "maybe"}, wantError: true},
		{name: "set but empty is invalid, as in Langflow", env: envMap{variables.EnvStoreEnvironmentVariables: ""}, wantError: true},
		{name: "no trimming, as pydantic", env: envMap{variables.EnvFallbackToEnvVar: " true "}, wantError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := variables.EnvSettingsFromEnv(tc.env.Lookup)
			if tc.wantError {
				require.ErrorIs(t, err, variables.ErrInvalidSetting)
				assert.NotContains(t, err.Error(), "maybe")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.store, st.StoreEnvironmentVariables)
			assert.Equal(t, tc.fallback, st.FallbackToEnv)
			assert.Equal(t, append(append([]string{}, variables.DefaultEnvNames...), tc.extra...), st.Names)
		})
	}
}

func TestProviderDefaultFields(t *testing.T) {
	f, ok := variables.ProviderDefaultFields("OPENAI_API_KEY")
	assert.True(t, ok)
	assert.Equal(t, []string{"OpenAI", "api_key"}, f)
	f, ok = variables.ProviderDefaultFields("WATSONX_APIKEY")
	assert.True(t, ok)
	assert.Equal(t, []string{"IBM WatsonX", "api_key"}, f)
	_, ok = variables.ProviderDefaultFields("GROQ_API_KEY")
	assert.False(t, ok)
}

// TestImportEnvRules ports docs/langflow-compatibility.md#environment-import and test_service.py's import test:
// listed names are created as Credential with trimmed values; empty values,
// unlisted names and provider keys set to "dummy" are skipped.
func TestImportEnvRules(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	env := envMap{
		"OPENAI_API_KEY":                "  sk-openai \n",
		"ANTHROPIC_API_KEY":             "DUMMY", // provider placeholder: skipped
		"COHERE_API_KEY":                "dummy", // not a provider variable: imported
		"GROQ_API_KEY":                  "   ",   // empty once trimmed
		"TAVILY_API_KEY":                "",
		"NOT_LISTED":                    "x",
		"CUSTOM":                        "c",
		variables.EnvVariablesToGet:     "CUSTOM , ALSO_MISSING",
		"LANGFLOW_SECRET_KEY":           "never imported",
		"AZURE_OPENAI_API_VERSION":      "2024-02-01",
		variables.EnvFallbackToEnvVar:   "true",
		"HUGGINGFACEHUB_API_TOKEN":      "hf",
		"ASTRA_DB_APPLICATION_TOKEN":    "AstraCS:1",
		"UPSTASH_VECTOR_REST_URL":       "https://u",
		"SERPAPI_API_KEY":               "serp",
		"AWS_SECRET_ACCESS_KEY":         "aws",
		"WATSONX_APIKEY":                "wx",
		"OPENROUTER_APP_NAME":           "app",
		"COMETAPI_KEY":                  "comet",
		"SAMBANOVA_API_KEY":             "samba",
		"AZURE_AI_FOUNDRY_API_KEY":      "foundry",
		"LANGFLOW_VARIABLES_TO_GET_XXX": "ignored",
	}
	rep, err := s.ImportEnv(ctx, "u1", variables.EnvImportOptions{LookupEnv: env.Lookup})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{
		"OPENAI_API_KEY", "COHERE_API_KEY", "CUSTOM", "AZURE_OPENAI_API_VERSION", "HUGGINGFACEHUB_API_TOKEN",
		"ASTRA_DB_APPLICATION_TOKEN", "UPSTASH_VECTOR_REST_URL", "SERPAPI_API_KEY", "AWS_SECRET_ACCESS_KEY",
		"WATSONX_APIKEY", "OPENROUTER_APP_NAME", "COMETAPI_KEY", "SAMBANOVA_API_KEY", "AZURE_AI_FOUNDRY_API_KEY",
	}, rep.Created)
	assert.Equal(t, []string{"ANTHROPIC_API_KEY"}, rep.Skipped)
	assert.Empty(t, rep.Updated)
	assert.Empty(t, rep.Failed)

	all, err := s.Store().ListByUser(ctx, "u1")
	require.NoError(t, err)
	for _, v := range all {
		assert.Equal(t, variables.Credential, v.Type, v.Name)
		assert.Equal(t, variables.OriginEnv, v.Origin, v.Name)
	}
	got, err := s.Value(ctx, "u1", "OPENAI_API_KEY")
	require.NoError(t, err)
	assert.Equal(t, "sk-openai", got, "values are trimmed")
	v, err := s.Store().GetByName(ctx, "u1", "OPENAI_API_KEY")
	require.NoError(t, err)
	assert.Equal(t, []string{"OpenAI", "api_key"}, v.DefaultFields)
	v, err = s.Store().GetByName(ctx, "u1", "CUSTOM")
	require.NoError(t, err)
	assert.Empty(t, v.DefaultFields)
	_, err = s.Store().GetByName(ctx, "u1", "NOT_LISTED")
	assert.ErrorIs(t, err, variables.ErrNotFound)
	_, err = s.Store().GetByName(ctx, "u1", "LANGFLOW_SECRET_KEY")
	assert.ErrorIs(t, err, variables.ErrNotFound)
}

func TestImportEnvExplicitNamesAndSwitch(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	env := envMap{"A": "a", "OPENAI_API_KEY": "sk", variables.EnvStoreEnvironmentVariables: "false"}
	rep, err := s.ImportEnv(ctx, "u1", variables.EnvImportOptions{Names: []string{"A"}, LookupEnv: env.Lookup})
	require.NoError(t, err)
	assert.True(t, rep.Disabled, "LANGFLOW_STORE_ENVIRONMENT_VARIABLES=false turns the import off")
	assert.Empty(t, rep.Created)

	delete(env, variables.EnvStoreEnvironmentVariables)
	rep, err = s.ImportEnv(ctx, "u1", variables.EnvImportOptions{Names: []string{"A"}, LookupEnv: env.Lookup})
	require.NoError(t, err)
	assert.Equal(t, []string{"A"}, rep.Created, "explicit Names replace the list")

	env[variables.EnvStoreEnvironmentVariables] = "perhaps"
	_, err = s.ImportEnv(ctx, "u1", variables.EnvImportOptions{LookupEnv: env.Lookup})
	assert.ErrorIs(t, err, variables.ErrInvalidSetting)
}

// TestImportEnvAcrossRestarts runs the import three times, each time with a
// new Service on the same store as a restarted server would, with an
// environment change and a user edit in between. Langflow's updated_at test
// stops env changes from propagating after the first re-import (#14983);
// keyflow keeps refreshing rows it imported and never touches rows a user
// edited.
func TestImportEnvAcrossRestarts(t *testing.T) {
	stores := map[string]func(t *testing.T) variables.Store{
		"memory": func(*testing.T) variables.Store { return variables.NewMemoryStore() },
		"sqlite": func(t *testing.T) variables.Store {
			s, err := sqlstore.New(context.Background(), dbtest.SQLite(t), sqlstore.Config{Dialect: sqldialect.SQLite})
			require.NoError(t, err)
			return s
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := newStore(t)
			restart := func(env envMap) (*variables.Service, variables.EnvImportReport) {
				t.Helper()
				s := newService(t, store) // a new process: new Service, same database
				rep, err := s.ImportEnv(ctx, "u1", variables.EnvImportOptions{LookupEnv: env.Lookup})
				require.NoError(t, err)
				return s, rep
			}
			value := func(s *variables.Service, name string) string {
				t.Helper()
				v, err := s.Value(ctx, "u1", name)
				require.NoError(t, err)
				return v
			}

			// Start 1. The user already has their own ANTHROPIC_API_KEY.
			pre := newService(t, store)
			_, err := pre.Create(ctx, "u1", variables.CreateInput{Name: "ANTHROPIC_API_KEY", Value: "user-anthropic"})
			require.NoError(t, err)
			env := envMap{"OPENAI_API_KEY": "sk-1", "GROQ_API_KEY": "g-1", "COHERE_API_KEY": "c-1", "ANTHROPIC_API_KEY": "env-anthropic"}
			s, rep := restart(env)
			assert.ElementsMatch(t, []string{"OPENAI_API_KEY", "GROQ_API_KEY", "COHERE_API_KEY"}, rep.Created)
			assert.Equal(t, []string{"ANTHROPIC_API_KEY"}, rep.UserEdited)
			assert.Equal(t, "user-anthropic", value(s, "ANTHROPIC_API_KEY"), "a user's own row is never overwritten")
			a, err := store.GetByName(ctx, "u1", "ANTHROPIC_API_KEY")
			require.NoError(t, err)
			assert.Equal(t, []string{"Anthropic", "api_key"}, a.DefaultFields, "empty default fields of a provider variable are filled")
			assert.Equal(t, variables.OriginUser, a.Origin)

			// Between 1 and 2: the environment changes and the user edits GROQ_API_KEY.
			groq, err := store.GetByName(ctx, "u1", "GROQ_API_KEY")
			require.NoError(t, err)
			_, err = s.Update(ctx, "u1", groq.ID, variables.Patch{Value: ptr("user-groq")})
			require.NoError(t, err)
			env["OPENAI_API_KEY"], env["GROQ_API_KEY"] = "sk-2", "g-2"

			// Start 2.
			s, rep = restart(env)
			assert.Equal(t, []string{"OPENAI_API_KEY"}, rep.Updated)
			assert.ElementsMatch(t, []string{"GROQ_API_KEY", "ANTHROPIC_API_KEY"}, rep.UserEdited)
			assert.Equal(t, []string{"COHERE_API_KEY"}, rep.Unchanged)
			assert.Equal(t, "sk-2", value(s, "OPENAI_API_KEY"))
			assert.Equal(t, "user-groq", value(s, "GROQ_API_KEY"))
			cohere, err := store.GetByName(ctx, "u1", "COHERE_API_KEY")
			require.NoError(t, err)
			assert.True(t, cohere.UpdatedAt.IsZero(), "an unchanged row is not rewritten")

			// Between 2 and 3: the environment changes again. In Langflow the
			// OPENAI_API_KEY row now looks user-modified and stays at sk-2.
			env["OPENAI_API_KEY"], env["GROQ_API_KEY"] = "sk-3", "g-3"
			delete(env, "COHERE_API_KEY")

			// Start 3.
			s, rep = restart(env)
			assert.Equal(t, []string{"OPENAI_API_KEY"}, rep.Updated)
			assert.Equal(t, "sk-3", value(s, "OPENAI_API_KEY"), "env changes keep propagating (#14983)")
			assert.Equal(t, "user-groq", value(s, "GROQ_API_KEY"))
			assert.Equal(t, "user-anthropic", value(s, "ANTHROPIC_API_KEY"))
			assert.Equal(t, "c-1", value(s, "COHERE_API_KEY"), "an unset variable does not delete the row")
			o, err := store.GetByName(ctx, "u1", "OPENAI_API_KEY")
			require.NoError(t, err)
			assert.Equal(t, variables.OriginEnv, o.Origin)
			assert.Equal(t, []string{"OpenAI", "api_key"}, o.DefaultFields)
		})
	}
}

// TestImportEnvIsPerUser: the server runs the import for every user.
func TestImportEnvIsPerUser(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	env := envMap{"OPENAI_API_KEY": "sk"}
	for _, u := range []string{"u1", "u2"} {
		rep, err := s.ImportEnv(ctx, u, variables.EnvImportOptions{LookupEnv: env.Lookup})
		require.NoError(t, err)
		assert.Equal(t, []string{"OPENAI_API_KEY"}, rep.Created)
	}
}

// TestImportEnvFailures: a failing row is reported and the rest imported.
func TestImportEnvFailures(t *testing.T) {
	ctx := context.Background()
	s := newService(t, failingStore{variables.NewMemoryStore()})
	rep, err := s.ImportEnv(ctx, "u1", variables.EnvImportOptions{Names: []string{"A", "B"}, LookupEnv: envMap{"A": "secret-a", "B": "secret-b"}.Lookup})
	require.ErrorIs(t, err, errBroken)
	assert.NotContains(t, err.Error(), "secret-a")
	assert.Equal(t, []string{"A", "B"}, rep.Failed)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = newService(t, nil).ImportEnv(cctx, "u1", variables.EnvImportOptions{Names: []string{"A"}, LookupEnv: envMap{"A": "a"}.Lookup})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestImportEnvDoesNotOverwriteConcurrentEdit(t *testing.T) {
	ctx := context.Background()
	mem := variables.NewMemoryStore()
	first := newService(t, mem)
	_, err := first.ImportEnv(ctx, "u1", variables.EnvImportOptions{Names: []string{"K"}, LookupEnv: envMap{"K": "env-1"}.Lookup})
	require.NoError(t, err)
	row, err := mem.GetByName(ctx, "u1", "K")
	require.NoError(t, err)

	racing := &beforeUpdate{Store: mem, hook: func() { // a PATCH racing with the startup import
		_, err := first.Update(ctx, "u1", row.ID, variables.Patch{Value: ptr("user value")})
		require.NoError(t, err)
	}}
	s := newService(t, racing)
	rep, err := s.ImportEnv(ctx, "u1", variables.EnvImportOptions{Names: []string{"K"}, LookupEnv: envMap{"K": "env-2"}.Lookup})
	require.NoError(t, err)
	assert.Equal(t, []string{"K"}, rep.UserEdited)
	got, err := s.Value(ctx, "u1", "K")
	require.NoError(t, err)
	assert.Equal(t, "user value", got)
}
