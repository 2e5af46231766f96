package keyvars

import (
	"fmt"
	"log/slog"

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables/kubestore"
)

// kubernetesVariables is the variable store on Kubernetes Secrets
// (LANGFLOW_VARIABLE_STORE=kubernetes), in Langflow's layout, on the cluster
// kubectl would use (KUBECONFIG, ~/.kube/config, or the pod's service
// account). keyring opens the Credential tokens the Service makes, so the
// Secrets hold the values in clear as Langflow's do, unless
// KEYFLOW_KUBERNETES_ENCRYPT_CREDENTIALS keeps them encrypted.
func kubernetesVariables(cfg config.Config, keyring *secrets.Keyring, log *slog.Logger) (*kubestore.Store, error) {
	client, err := kubestore.DefaultClient()
	if err != nil {
		return nil, fmt.Errorf("LANGFLOW_VARIABLE_STORE=kubernetes: %w", err)
	}
	store, err := kubestore.New(kubestore.Config{
		Client:             client,
		Namespace:          cfg.Kubernetes.Namespace,
		Keyring:            keyring,
		EncryptCredentials: cfg.Kubernetes.EncryptCredentials,
	})
	if err != nil {
		return nil, fmt.Errorf("LANGFLOW_VARIABLE_STORE=kubernetes: %w", err)
	}
	log.Info("variables kept in Kubernetes Secrets", "namespace", store.Namespace(),
		"credentials", map[bool]string{false: "in clear", true: "encrypted"}[cfg.Kubernetes.EncryptCredentials])
	return store, nil
}
