package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/keyflowtest"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables/kubestore"
	"github.com/keyflow-dev/keyflow/variables/kubestore/kubetest"
)

// TestKubernetesVariableStore: with LANGFLOW_VARIABLE_STORE=kubernetes and
// KUBECONFIG naming a service account that may only touch Secrets in
// "langflow", the server keeps variables in Langflow's layout there (a
// Credential in clear, where Langflow reads it), sees what Langflow writes
// there, keeps keys and users in its database, and answers 503 while the
// API server is away, then serves again.
func TestKubernetesVariableStore(t *testing.T) {
	const howTo = "build kube-apiserver and install etcd with scripts/kube-apiserver.sh (or set " + kubetest.BinaryEnv + ")"
	bin, ok := kubetest.BinaryPath()
	if !ok {
		dbtest.SkipSuite(t, "Kubernetes API server tests", "no kube-apiserver at "+bin+": "+howTo)
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		dbtest.SkipSuite(t, "Kubernetes API server tests", "no etcd: "+howTo)
	}
	ctx := context.Background()
	kube, err := kubetest.New(bin, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(kube.Close)
	token, err := kube.LimitedToken(ctx, kubestore.DefaultNamespace, "keyflow")
	require.NoError(t, err)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, kube.WriteKubeconfig(kubeconfig, token))
	t.Setenv("KUBECONFIG", kubeconfig)

	cfg := config.Config{
		ConfigDir:     t.TempDir(),
		Host:          "127.0.0.1",
		Auth:          middleware.Config{AutoLogin: false},
		Getenv:        func(string) string { return "" },
		VariableStore: config.VariableStoreKubernetes,
	}
	logs := &keyflowtest.LogBuffer{}
	a, err := openApp(ctx, cfg, newLogger(logs, 0))
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	h, err := httpserver.Handler(a, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	key, _, err := a.Keys.Create(ctx, a.Superuser.ID, "kubernetes", apikey.CreateOptions{})
	require.NoError(t, err)

	do := func(method, path string, body any) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, srv.URL+path, rd)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-api-key", key)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = res.Body.Close() }()
		out, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(out)
	}

	code, body := do("POST", "/api/v1/variables/", map[string]any{
		"name": "OPENAI_API_KEY", "value": "sk-kube-credential", "type": "Credential", "default_fields": []string{"api_key"}})
	require.Equal(t, http.StatusCreated, code, body)
	code, body = do("POST", "/api/v1/variables/", map[string]any{"name": "two words", "value": "v", "type": "Generic"})
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "Kubernetes Secret", "a name a Secret key cannot hold is refused, saying why")

	admin, err := kube.Admin()
	require.NoError(t, err)
	secretName, err := kubestore.LangflowSecretName(a.Superuser.ID)
	require.NoError(t, err)
	secretsAPI := admin.CoreV1().Secrets(kubestore.DefaultNamespace)
	sec, err := secretsAPI.Get(ctx, secretName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"Credential_OPENAI_API_KEY": []byte("sk-kube-credential")}, sec.Data,
		"Langflow's layout: the Credential in clear under its prefixed key")

	// Langflow adds a Generic variable to the same Secret.
	sec.Data["REGION"] = []byte("eu-west")
	_, err = secretsAPI.Update(ctx, sec, metav1.UpdateOptions{})
	require.NoError(t, err)
	code, body = do("GET", "/api/v1/variables/", nil)
	require.Equal(t, http.StatusOK, code, body)
	var list []struct {
		Name          string   `json:"name"`
		Type          string   `json:"type"`
		Value         *string  `json:"value"`
		DefaultFields []string `json:"default_fields"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list, 2)
	got := map[string]string{}
	for _, v := range list {
		value := "<null>"
		if v.Value != nil {
			value = *v.Value
		}
		got[v.Name] = v.Type + " " + value
		if v.Name == "OPENAI_API_KEY" {
			assert.Equal(t, []string{"api_key"}, v.DefaultFields, "kept beside Langflow's layout")
		}
	}
	assert.Equal(t, map[string]string{"OPENAI_API_KEY": "Credential <null>", "REGION": "Generic eu-west"}, got)
	value, err := a.Vars.Value(ctx, a.Superuser.ID, "OPENAI_API_KEY")
	require.NoError(t, err)
	assert.Equal(t, "sk-kube-credential", value, "flows resolve it")

	// Keys and users stay in the database; no variable goes there.
	var n int
	assert.Error(t, a.DB.QueryRowContext(ctx, "SELECT count(*) FROM variable").Scan(&n), "no variable table")
	assert.Contains(t, logs.String(), `msg="variables kept in Kubernetes Secrets" namespace=langflow credentials="in clear"`)

	// The API server goes away: 503, then service again, nothing lost.
	kube.Stop()
	code, body = do("GET", "/api/v1/variables/", nil)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.JSONEq(t, `{"detail":"Variable store unavailable"}`, body)
	require.NoError(t, kube.Start())
	code, body = do("GET", "/api/v1/variables/", nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "REGION")
	assert.NotContains(t, logs.String(), "sk-kube-credential", "no value in the logs")
}
