package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVariableStore(t *testing.T) {
	for _, tc := range []struct {
		env       map[string]string
		want      string
		namespace string
		encrypt   bool
		err       string
	}{
		{env: map[string]string{}, want: VariableStoreDB},
		{env: map[string]string{"LANGFLOW_VARIABLE_STORE": "db"}, want: VariableStoreDB},
		{env: map[string]string{"LANGFLOW_VARIABLE_STORE": " Kubernetes "}, want: VariableStoreKubernetes},
		{env: map[string]string{"LANGFLOW_VARIABLE_STORE": "kubernetes", "KEYFLOW_KUBERNETES_NAMESPACE": "team-a",
			"KEYFLOW_KUBERNETES_ENCRYPT_CREDENTIALS": "true"}, want: VariableStoreKubernetes, namespace: "team-a", encrypt: true},
		{env: map[string]string{"LANGFLOW_VARIABLE_STORE": "vault"}, err: `LANGFLOW_VARIABLE_STORE must be "db" or "kubernetes", got "vault"`},
		{env: map[string]string{"KEYFLOW_KUBERNETES_ENCRYPT_CREDENTIALS": "maybe"}, err: "KEYFLOW_KUBERNETES_ENCRYPT_CREDENTIALS"},
	} {
		for _, k := range []string{"LANGFLOW_VARIABLE_STORE", "KEYFLOW_KUBERNETES_NAMESPACE", "KEYFLOW_KUBERNETES_ENCRYPT_CREDENTIALS"} {
			t.Setenv(k, tc.env[k])
		}
		if _, ok := tc.env["KEYFLOW_KUBERNETES_ENCRYPT_CREDENTIALS"]; !ok {
			t.Setenv("KEYFLOW_KUBERNETES_ENCRYPT_CREDENTIALS", "false")
		}
		cfg, err := Load(Flags{ConfigDir: t.TempDir(), DefaultLevel: "info"}, nil, nil)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.want, cfg.VariableStore)
		assert.Equal(t, tc.namespace, cfg.Kubernetes.Namespace)
		assert.Equal(t, tc.encrypt, cfg.Kubernetes.EncryptCredentials)
	}
}
