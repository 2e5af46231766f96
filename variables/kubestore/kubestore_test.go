package kubestore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/kubestore"
	"github.com/keyflow-dev/keyflow/variables/storetest"
)

// TestConformance runs the Store conformance suite on a real API server,
// each store on a fresh namespace, Credentials in clear (Langflow's layout)
// and encrypted.
func TestConformance(t *testing.T) {
	srv := sharedServer(t)
	cfg := storetest.Config{ASCIINames: true, IDsPerUser: true}
	t.Run("Langflow layout", func(t *testing.T) {
		storetest.RunWith(t, func(t *testing.T) variables.Store { return newStore(t, srv, newNamespace(t, srv)) }, cfg)
	})
	t.Run("encrypted Credentials", func(t *testing.T) {
		storetest.RunWith(t, func(t *testing.T) variables.Store {
			s, err := kubestore.New(kubestore.Config{
				Client: adminClient(t, srv), Namespace: newNamespace(t, srv), EncryptCredentials: true,
			})
			require.NoError(t, err)
			return s
		}, cfg)
	})
}

// conflictCounter counts the API server's 409 Conflict answers.
type conflictCounter struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c conflictCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusConflict {
		c.n.Add(1)
	}
	return resp, err
}

// TestConcurrentWritersLoseNoUpdate: several server replicas (each a Store
// with its own client) create and edit variables of one user at once, so
// all write the same Secret. Writes overtaken by another (409 Conflict from
// the API server) are read again and retried: every variable ends with its
// last value, although the API server refused many writes.
func TestConcurrentWritersLoseNoUpdate(t *testing.T) {
	srv := sharedServer(t)
	ns := newNamespace(t, srv)
	var conflicts atomic.Int64
	const replicas, writersPerReplica, edits = 3, 4, 3
	services := make([]*variables.Service, replicas)
	for i := range services {
		cfg := srv.Config(srv.AdminToken())
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return conflictCounter{rt, &conflicts} }
		client, err := kubernetes.NewForConfig(cfg)
		require.NoError(t, err)
		store, err := kubestore.New(kubestore.Config{Client: client, Namespace: ns, Keyring: testKeyring(t)})
		require.NoError(t, err)
		services[i], err = variables.NewService(variables.ServiceConfig{Store: store, Keyring: testKeyring(t)})
		require.NoError(t, err)
	}
	ctx := context.Background()
	user := ids.New()
	var wg sync.WaitGroup
	for r, svc := range services {
		for w := range writersPerReplica {
			wg.Go(func() {
				name := fmt.Sprintf("VAR_%d_%d", r, w)
				v, err := svc.Create(ctx, user, variables.CreateInput{Name: name, Value: name + "-0", Type: variables.Generic})
				if !assert.NoError(t, err) {
					return
				}
				for e := 1; e <= edits; e++ {
					value := fmt.Sprintf("%s-%d", name, e)
					_, err := svc.Update(ctx, user, v.ID, variables.Patch{Value: &value})
					assert.NoError(t, err)
				}
			})
		}
	}
	wg.Wait()
	list, err := services[0].List(ctx, user)
	require.NoError(t, err)
	got := map[string]string{}
	for _, v := range list {
		got[v.Name] = v.Value
	}
	want := map[string]string{}
	for r := range replicas {
		for w := range writersPerReplica {
			name := fmt.Sprintf("VAR_%d_%d", r, w)
			want[name] = fmt.Sprintf("%s-%d", name, edits)
		}
	}
	assert.Equal(t, want, got, "every write of every writer is kept")
	t.Logf("%d writes overtaken and retried", conflicts.Load())
	assert.Positive(t, conflicts.Load(), "the writers raced on one Secret")
}

// TestRBACOneNamespace: a service account whose Role allows secrets in
// namespace "langflow" only uses the Store there, and is refused
// elsewhere with an error that says so and wraps ErrUnavailable and
// ErrForbidden.
func TestRBACOneNamespace(t *testing.T) {
	srv := sharedServer(t)
	ctx := context.Background()
	token, err := srv.LimitedToken(ctx, kubestore.DefaultNamespace, "keyflow-"+randomName(""))
	require.NoError(t, err)
	limited, err := srv.Client(token)
	require.NoError(t, err)

	home, err := kubestore.New(kubestore.Config{Client: limited, Keyring: testKeyring(t)})
	require.NoError(t, err)
	assert.Equal(t, "langflow", home.Namespace())
	user := ids.New()
	v := variables.Variable{ID: ids.New(), UserID: user, Name: "OPENAI_API_KEY", Value: "sk-rbac",
		Type: variables.Credential, CreatedAt: metav1.Now().UTC(), Origin: variables.OriginUser}
	require.NoError(t, home.Create(ctx, v))
	got, err := home.GetByName(ctx, user, "OPENAI_API_KEY")
	require.NoError(t, err)
	assert.Equal(t, "sk-rbac", got.Value)
	_, err = home.ListCiphertexts(ctx, "", 0)
	require.NoError(t, err, "list is granted too")
	require.NoError(t, home.Delete(ctx, user, v.ID))

	other := newNamespace(t, srv)
	away, err := kubestore.New(kubestore.Config{Client: limited, Namespace: other, Keyring: testKeyring(t)})
	require.NoError(t, err)
	v.ID = ids.New()
	for name, call := range map[string]func() error{
		"Create":          func() error { return away.Create(ctx, v) },
		"ListByUser":      func() error { _, err := away.ListByUser(ctx, user); return err },
		"ListCiphertexts": func() error { _, err := away.ListCiphertexts(ctx, "", 0); return err },
	} {
		err := call()
		require.Error(t, err, name)
		assert.ErrorIs(t, err, variables.ErrUnavailable, name)
		assert.ErrorIs(t, err, kubestore.ErrForbidden, name)
		assert.Contains(t, err.Error(), "forbidden", name)
		assert.Contains(t, err.Error(), other, name+": the error names the namespace")
		assert.NotContains(t, err.Error(), "sk-rbac", name)
	}
	// The refused write left nothing behind.
	list, err := newStore(t, srv, other).ListByUser(ctx, user)
	require.NoError(t, err)
	assert.Empty(t, list)
}

// TestAPIServerStopped: writers run while the API server stops and starts
// again. While it is away every call fails at once with an error that wraps
// ErrUnavailable and names no value; once it is back, every write that
// succeeded is there, with its value, and writes succeed again.
func TestAPIServerStopped(t *testing.T) {
	srv := ownServer(t)
	require.NoError(t, srv.CreateNamespace(context.Background(), kubestore.DefaultNamespace))
	store := newStore(t, srv, kubestore.DefaultNamespace)
	svc, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: testKeyring(t)})
	require.NoError(t, err)
	ctx := context.Background()
	user := ids.New()

	const writers, before, after = 3, 4, 4
	var (
		mu      sync.Mutex
		acked   = map[string]string{} // name → value of every write that succeeded
		stopped = make(chan struct{}) // closed once the API server is stopped
		resumed = make(chan struct{}) // closed once it runs again
		failed  sync.WaitGroup        // each writer's first failure
		wg      sync.WaitGroup
	)
	failed.Add(writers)
	for w := range writers {
		wg.Go(func() {
			ok, sawFailure := 0, false
			for i := 0; ok < before+after; i++ {
				if ok == before && !sawFailure {
					<-stopped // the first writes are done; wait for the outage
				}
				name := fmt.Sprintf("W%d_%d", w, i)
				value := "secret-" + name
				_, err := svc.Create(ctx, user, variables.CreateInput{Name: name, Value: value})
				if err == nil {
					mu.Lock()
					acked[name] = value
					mu.Unlock()
					ok++
					continue
				}
				assert.ErrorIs(t, err, variables.ErrUnavailable)
				assert.NotContains(t, err.Error(), value)
				if !sawFailure {
					sawFailure = true
					failed.Done()
				}
				<-resumed
			}
		})
	}
	// Stop once every writer has made its first writes.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) == writers*before
	}, testTimeout, pollEvery)
	start := time.Now()
	srv.Stop()
	t.Logf("stopped in %v", time.Since(start))
	close(stopped)
	failed.Wait() // every writer met the outage

	// Every kind of call fails while the API server is away.
	for name, call := range map[string]func() error{
		"List":   func() error { _, err := svc.List(ctx, user); return err },
		"Value":  func() error { _, err := svc.Value(ctx, user, "W0_0"); return err },
		"Get":    func() error { _, err := store.Get(ctx, user, ids.New()); return err },
		"Delete": func() error { return store.Delete(ctx, user, ids.New()) },
		"ListCiphertexts": func() error {
			_, err := store.ListCiphertexts(ctx, "", 0)
			return err
		},
	} {
		err := call()
		assert.ErrorIs(t, err, variables.ErrUnavailable, name)
		assert.NotErrorIs(t, err, variables.ErrNotFound, name)
	}

	start = time.Now()
	require.NoError(t, srv.Start())
	t.Logf("started in %v", time.Since(start))
	close(resumed)
	wg.Wait()

	list, err := store.ListByUser(ctx, user)
	require.NoError(t, err)
	got := map[string]string{}
	for _, v := range list {
		got[v.Name] = v.Value
	}
	for name, value := range acked {
		assert.Equal(t, value, got[name], "acknowledged write %s kept", name)
	}
	assert.Len(t, acked, writers*(before+after))
}

// langflowSecret is a Secret as Langflow's KubernetesSecretManager.create_secret
// writes it: type Opaque, no labels or annotations, one data key per
// variable, the values as given (the API base64-encodes them).
func langflowSecret(name string, data map[string]string) *corev1.Secret {
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{},
	}
	for k, v := range data {
		sec.Data[k] = []byte(v)
	}
	return sec
}

// langflowReads lists the variables as Langflow's KubernetesSecretService
// reads a Secret (get_all): name → type and value.
func langflowReads(sec *corev1.Secret) map[string]string {
	out := map[string]string{}
	for key, value := range sec.Data {
		if name, ok := cutCredential(key); ok {
			out[name] = "Credential:" + string(value)
		} else {
			out[key] = "Generic:" + string(value)
		}
	}
	return out
}

func cutCredential(key string) (string, bool) {
	const p = "Credential_"
	if len(key) > len(p) && key[:len(p)] == p {
		return key[len(p):], true
	}
	return "", false
}

// TestLangflowLayout: variables Langflow wrote read back through the Store
// and the Service; variables keyflow writes are where Langflow reads them,
// in clear; Langflow's own later edits (a read-modify-replace of the Secret)
// keep keyflow's metadata and are seen.
func TestLangflowLayout(t *testing.T) {
	srv := sharedServer(t)
	ctx := context.Background()
	require.NoError(t, srv.CreateNamespace(ctx, kubestore.DefaultNamespace))
	admin := adminClient(t, srv).CoreV1().Secrets(kubestore.DefaultNamespace)
	user := ids.New()
	secretName := "uuid-" + user
	created, err := admin.Create(ctx, langflowSecret(secretName, map[string]string{
		"Credential_OPENAI_API_KEY": "sk-langflow",
		"BASE_URL":                  "https://llm.example",
	}), metav1.CreateOptions{})
	require.NoError(t, err)

	store := newStore(t, srv, kubestore.DefaultNamespace)
	k := testKeyring(t)
	svc, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: k})
	require.NoError(t, err)

	list, err := svc.List(ctx, user)
	require.NoError(t, err)
	require.Len(t, list, 2)
	byName := map[string]variables.Variable{}
	for _, v := range list {
		byName[v.Name] = v
		assert.True(t, ids.Valid(v.ID), "a Langflow variable gets an ID")
		assert.True(t, v.CreatedAt.Equal(created.CreationTimestamp.UTC()), "created with the Secret")
		assert.True(t, v.UpdatedAt.IsZero())
		assert.Equal(t, []string{}, v.DefaultFields)
	}
	assert.Equal(t, variables.Credential, byName["OPENAI_API_KEY"].Type)
	assert.Empty(t, byName["OPENAI_API_KEY"].Value, "a Credential is never listed")
	assert.Equal(t, variables.Generic, byName["BASE_URL"].Type)
	assert.Equal(t, "https://llm.example", byName["BASE_URL"].Value)
	value, err := svc.Value(ctx, user, "OPENAI_API_KEY")
	require.NoError(t, err)
	assert.Equal(t, "sk-langflow", value)
	again, err := svc.Get(ctx, user, byName["OPENAI_API_KEY"].ID)
	require.NoError(t, err, "the derived ID is stable from one read to the next")
	assert.Equal(t, "OPENAI_API_KEY", again.Name)

	// keyflow writes: a new Credential and default fields on Langflow's.
	_, err = svc.Create(ctx, user, variables.CreateInput{Name: "ANTHROPIC_API_KEY", Value: "sk-ant",
		DefaultFields: []string{"api_key"}})
	require.NoError(t, err)
	fields := []string{"openai_api_key"}
	_, err = svc.Update(ctx, user, byName["OPENAI_API_KEY"].ID, variables.Patch{DefaultFields: &fields})
	require.NoError(t, err)

	sec, err := admin.Get(ctx, secretName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"OPENAI_API_KEY":    "Credential:sk-langflow",
		"ANTHROPIC_API_KEY": "Credential:sk-ant",
		"BASE_URL":          "Generic:https://llm.example",
	}, langflowReads(sec), "Langflow reads every variable, values in clear")
	assert.Equal(t, user, sec.Annotations[kubestore.UserAnnotation])
	assert.Equal(t, "true", sec.Labels[kubestore.Label])
	assert.Contains(t, sec.Annotations[kubestore.MetadataAnnotation], `"openai_api_key"`)
	assert.NotContains(t, sec.Annotations[kubestore.MetadataAnnotation], "sk-", "no value in the annotations")

	// Langflow edits as update_secret does: read, change data, replace.
	sec.Data["BASE_URL"] = []byte("https://llm2.example")
	delete(sec.Data, "Credential_ANTHROPIC_API_KEY") // delete_secret_key
	_, err = admin.Update(ctx, sec, metav1.UpdateOptions{})
	require.NoError(t, err)
	list, err = svc.List(ctx, user)
	require.NoError(t, err)
	got := map[string]variables.Variable{}
	for _, v := range list {
		got[v.Name] = v
	}
	require.Len(t, got, 2)
	assert.Equal(t, "https://llm2.example", got["BASE_URL"].Value)
	assert.Equal(t, byName["BASE_URL"].ID, got["BASE_URL"].ID, "the ID keyflow recorded is kept")
	assert.Equal(t, fields, got["OPENAI_API_KEY"].DefaultFields)

	// The last variable gone, the Secret goes (Langflow cannot read a Secret
	// without data).
	for _, v := range list {
		require.NoError(t, svc.Delete(ctx, user, v.ID))
	}
	_, err = admin.Get(ctx, secretName, metav1.GetOptions{})
	assert.True(t, isNotFound(err), "got %v", err)
}

func isNotFound(err error) bool {
	var status interface{ Status() metav1.Status }
	return errors.As(err, &status) && status.Status().Reason == metav1.StatusReasonNotFound
}

// TestRotation: secrets.Reencrypt rotates the encrypted Credentials of every
// user in the namespace, through ListCiphertexts and SwapCiphertext.
func TestRotation(t *testing.T) {
	srv := sharedServer(t)
	ns := newNamespace(t, srv)
	ctx := context.Background()
	oldKeys := testKeyring(t)
	store, err := kubestore.New(kubestore.Config{Client: adminClient(t, srv), Namespace: ns, EncryptCredentials: true})
	require.NoError(t, err)
	svc, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: oldKeys})
	require.NoError(t, err)
	users := []string{ids.New(), ids.New(), "alice@example.com"}
	for i, u := range users {
		_, err := svc.Create(ctx, u, variables.CreateInput{Name: "KEY", Value: fmt.Sprintf("value-%d", i)})
		require.NoError(t, err)
	}
	newKeys, err := secrets.NewKeyring("kubestore-test-new-master-secret-987654", "kubestore-test-master-secret-0123456789")
	require.NoError(t, err)
	n, err := secrets.Reencrypt(ctx, newKeys, store, secrets.ReencryptOptions{})
	require.NoError(t, err)
	assert.Equal(t, secrets.ReencryptReport{Rotated: 3, LastID: n.LastID}, n)

	onlyNew, err := secrets.NewKeyring("kubestore-test-new-master-secret-987654")
	require.NoError(t, err)
	svc2, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: onlyNew})
	require.NoError(t, err)
	for i, u := range users {
		v, err := svc2.Value(ctx, u, "KEY")
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("value-%d", i), v)
	}
}

// Shared waits of these tests.
const (
	testTimeout = 60 * time.Second
	pollEvery   = 20 * time.Millisecond
)

// TestSecretTooLarge: a write the API server refuses (a Secret over 1 MiB)
// fails with an error that wraps ErrUnavailable and says why, names no
// value, and loses nothing already stored.
func TestSecretTooLarge(t *testing.T) {
	srv := sharedServer(t)
	store := newStore(t, srv, newNamespace(t, srv))
	ctx := context.Background()
	user := ids.New()
	big := func(name, fill string) variables.Variable {
		return variables.Variable{ID: ids.New(), UserID: user, Name: name, Value: strings.Repeat(fill, 600<<10),
			Type: variables.Generic, CreatedAt: time.Now().UTC(), Origin: variables.OriginUser}
	}
	first := big("FIRST", "a")
	require.NoError(t, store.Create(ctx, first))
	err := store.Create(ctx, big("SECOND", "b"))
	require.Error(t, err)
	assert.ErrorIs(t, err, variables.ErrUnavailable)
	assert.Contains(t, err.Error(), "Too long")
	assert.NotContains(t, err.Error(), "bbbb")
	list, err := store.ListByUser(ctx, user)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, first.Value, list[0].Value)
}
