package config

import (
	"fmt"
	"strings"

	"github.com/keyflow-dev/keyflow/envbool"
)

// Variable stores (LANGFLOW_VARIABLE_STORE), named as Langflow names them.
const (
	VariableStoreDB         = "db"         // the database (default)
	VariableStoreKubernetes = "kubernetes" // Kubernetes Secrets (package kubestore)
)

// Kubernetes configures the variable store on Kubernetes Secrets. The
// cluster is found as kubectl finds it: KUBECONFIG, ~/.kube/config, or the
// pod's service account.
type Kubernetes struct {
	// Namespace holds the Secrets (KEYFLOW_KUBERNETES_NAMESPACE); ""
	// means Langflow's, "langflow".
	Namespace string
	// EncryptCredentials keeps Credential values Fernet-encrypted under
	// the master secret instead of in clear as Langflow keeps them
	// (KEYFLOW_KUBERNETES_ENCRYPT_CREDENTIALS; a Langflow on the same
	// cluster cannot use them then).
	EncryptCredentials bool
}

// variableStore reads LANGFLOW_VARIABLE_STORE ("db" or "kubernetes", any
// case; unset or empty: "db") and, for Kubernetes, its settings.
func variableStore(cfg *Config, getenv func(string) string) error {
	switch v := strings.ToLower(strings.TrimSpace(getenv("LANGFLOW_VARIABLE_STORE"))); v {
	case "", VariableStoreDB:
		cfg.VariableStore = VariableStoreDB
	case VariableStoreKubernetes:
		cfg.VariableStore = VariableStoreKubernetes
	default:
		return fmt.Errorf("LANGFLOW_VARIABLE_STORE must be %q or %q, got %q", VariableStoreDB, VariableStoreKubernetes, v)
	}
	cfg.Kubernetes.Namespace = strings.TrimSpace(getenv("KEYFLOW_KUBERNETES_NAMESPACE"))
	var err error
	cfg.Kubernetes.EncryptCredentials, err = envbool.Lookup(lookupEnv, "KEYFLOW_KUBERNETES_ENCRYPT_CREDENTIALS", false)
	return err
}
