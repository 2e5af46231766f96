package variables_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

func ExampleService_Create() {
	ctx := context.Background()
	k, _ := secrets.NewKeyring("my-master-secret-0123456789-abcdefgh")
	svc, _ := variables.NewService(variables.ServiceConfig{Keyring: k}) // in-memory store

	v, _ := svc.Create(ctx, "user-1", variables.CreateInput{Name: "OPENAI_API_KEY", Value: "sk-abc"})
	fmt.Println(v.Type, secrets.IsEncrypted(v.Value)) // stored encrypted

	plain, _ := svc.Value(ctx, "user-1", "OPENAI_API_KEY")
	fmt.Println(plain)

	_, err := svc.Create(ctx, "user-1", variables.CreateInput{Name: "OPENAI_API_KEY", Value: "sk-def"})
	fmt.Println(err)
	// Output:
	// Credential true
	// sk-abc
	// Variable name already exists
}

func ExampleNewResolver() {
	ctx := context.Background()
	k, _ := secrets.NewKeyring("my-master-secret-0123456789-abcdefgh")
	svc, _ := variables.NewService(variables.ServiceConfig{Keyring: k})
	_, _ = svc.Create(ctx, "user-1", variables.CreateInput{Name: "OPENAI_API_KEY", Value: "sk-stored"})

	// The environment is injected; nil would read the process environment.
	env := map[string]string{"SERPAPI_API_KEY": "serp-from-env"}
	r, _ := variables.NewResolver(variables.ResolverConfig{
		Service:   svc,
		LookupEnv: func(name string) (string, bool) { v, ok := env[name]; return v, ok },
	})

	req := httptest.NewRequest("POST", "/api/v1/run/flow", nil)
	req.Header.Set("X-LANGFLOW-GLOBAL-VAR-TAVILY_API_KEY", "tvly-from-header")

	res, _ := r.Resolve(ctx, "user-1", []variables.Field{
		{Name: "model", Value: "gpt-4o"},                   // literal flow value
		{Name: "tavily_key", Variable: "TAVILY_API_KEY"},   // request header override
		{Name: "api_key", Variable: "OPENAI_API_KEY"},      // stored variable, decrypted
		{Name: "serpapi_key", Variable: "SERPAPI_API_KEY"}, // environment fallback
		{Name: "other", Variable: "MISSING"},               // nowhere
	}, variables.OverridesFromRequest(req))
	for _, x := range res {
		fmt.Printf("%-12s %-12s %q\n", x.Field, x.Layer, x.Value)
	}
	// Output:
	// model        flow         "gpt-4o"
	// tavily_key   request      "tvly-from-header"
	// api_key      stored       "sk-stored"
	// serpapi_key  environment  "serp-from-env"
	// other        none         ""
}
