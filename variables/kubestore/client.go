package kubestore

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Client-side rate limits of DefaultClient: client-go's defaults (5 a
// second, bursts of 10) would make the API server's clients wait long before
// the server itself is busy.
const (
	DefaultQPS   = 50
	DefaultBurst = 100
)

// DefaultClient returns a client configured as kubectl finds its cluster:
// the file(s) named by KUBECONFIG, else ~/.kube/config, else, in a pod, the
// service account's in-cluster configuration. Its rate limit is DefaultQPS
// (DefaultBurst).
func DefaultClient() (kubernetes.Interface, error) {
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubestore: no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster): %w", err)
	}
	return NewClient(cfg)
}

// NewClient returns a client for cfg, with DefaultQPS and DefaultBurst
// where cfg sets no rate limit.
func NewClient(cfg *rest.Config) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS = DefaultQPS
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubestore: Kubernetes client: %w", err)
	}
	return c, nil
}
