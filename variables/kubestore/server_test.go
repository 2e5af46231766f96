package kubestore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"

	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables/kubestore"
	"github.com/keyflow-dev/keyflow/variables/kubestore/kubetest"
)

// shared is the API server most tests use, started by the first of them and
// stopped by TestMain. Tests that stop an API server start their own.
var shared struct {
	once sync.Once
	dir  string
	srv  *kubetest.Server
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Close()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// apiServerBinary returns the kube-apiserver binary, or skips the test
// (fails it under CI) when it or etcd is missing.
func apiServerBinary(t testing.TB) string {
	t.Helper()
	const howTo = "build kube-apiserver and install etcd with scripts/kube-apiserver.sh (or set " + kubetest.BinaryEnv + ")"
	bin, ok := kubetest.BinaryPath()
	if !ok {
		dbtest.SkipSuite(t, "Kubernetes API server tests", "no kube-apiserver at "+bin+": "+howTo)
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		dbtest.SkipSuite(t, "Kubernetes API server tests", "no etcd: "+howTo)
	}
	return bin
}

// sharedServer is the shared API server.
func sharedServer(t testing.TB) *kubetest.Server {
	t.Helper()
	bin := apiServerBinary(t)
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "kubestore-test-")
		if shared.err == nil {
			shared.srv, shared.err = kubetest.New(bin, shared.dir)
		}
	})
	require.NoError(t, shared.err)
	return shared.srv
}

// ownServer is an API server for this test alone, stopped at its end.
func ownServer(t *testing.T) *kubetest.Server {
	t.Helper()
	srv, err := kubetest.New(apiServerBinary(t), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return srv
}

func randomName(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newNamespace creates a fresh namespace on srv.
func newNamespace(t testing.TB, srv *kubetest.Server) string {
	t.Helper()
	ns := randomName("t-")
	require.NoError(t, srv.CreateNamespace(context.Background(), ns))
	return ns
}

func adminClient(t testing.TB, srv *kubetest.Server) kubernetes.Interface {
	t.Helper()
	c, err := srv.Admin()
	require.NoError(t, err)
	return c
}

func testKeyring(t testing.TB) *secrets.Keyring {
	t.Helper()
	k, err := secrets.NewKeyring("kubestore-test-master-secret-0123456789")
	require.NoError(t, err)
	return k
}

// newStore is a Store with Langflow's layout (Credentials in clear) on
// namespace ns of srv, with its own admin client.
func newStore(t *testing.T, srv *kubetest.Server, ns string) *kubestore.Store {
	t.Helper()
	s, err := kubestore.New(kubestore.Config{Client: adminClient(t, srv), Namespace: ns, Keyring: testKeyring(t)})
	require.NoError(t, err)
	return s
}
