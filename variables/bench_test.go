package variables_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/sqlstore"
)

// BenchmarkResolve resolves one run of 20 fields: 10 bound to stored
// Credential variables (10 Fernet decryptions), 5 answered by the
// environment, 5 literal. Run with
//
//	go test -run '^$' -bench Resolve -benchmem ./variables/...
func BenchmarkResolve(b *testing.B) {
	stores := []struct {
		name string
		new  func(b *testing.B) variables.Store
	}{
		{"memory", func(*testing.B) variables.Store { return variables.NewMemoryStore() }},
		{"sqlite", func(b *testing.B) variables.Store {
			s, err := sqlstore.New(context.Background(), dbtest.SQLite(b), sqlstore.Config{Dialect: sqldialect.SQLite})
			require.NoError(b, err)
			return s
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			ctx := context.Background()
			svc := newService(b, st.new(b))
			env := envMap{}
			var fields []variables.Field
			for i := range 10 {
				name := fmt.Sprintf("STORED_%d", i)
				_, err := svc.Create(ctx, "user-1", variables.CreateInput{Name: name, Value: fmt.Sprintf("sk-%040d", i)})
				require.NoError(b, err)
				fields = append(fields, variables.Field{Name: "api_key", Variable: name})
			}
			for i := range 5 {
				name := fmt.Sprintf("ENV_%d", i)
				env[name] = "from-env"
				fields = append(fields, variables.Field{Name: "env_key", Variable: name})
			}
			for range 5 {
				fields = append(fields, variables.Field{Name: "model", Value: "gpt-4o"})
			}
			r := newResolver(b, svc, ptr(true), env)
			res, err := r.Resolve(ctx, "user-1", fields, nil)
			require.NoError(b, err)
			require.Equal(b, variables.LayerStored, res[0].Layer)
			require.Equal(b, variables.LayerEnvironment, res[10].Layer)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Resolve(ctx, "user-1", fields, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
