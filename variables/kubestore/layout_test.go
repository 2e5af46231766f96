package kubestore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/kubestore"
)

// These tests check the layout with client-go's fake clientset; the
// behaviour against a real API server is in kubestore_test.go.

func TestLangflowSecretName(t *testing.T) {
	for _, tc := range []struct{ userID, want string }{
		// Langflow's user IDs are UUIDs.
		{"0B5E1AD2-5C1F-4A3E-9D7E-2F0C8A6B4E11", "uuid-0b5e1ad2-5c1f-4a3e-9d7e-2f0c8a6b4e11"},
		{"0b5e1ad2-5c1f-4a3e-9d7e-2f0c8a6b4e11", "uuid-0b5e1ad2-5c1f-4a3e-9d7e-2f0c8a6b4e11"},
		// Other IDs as encode_user_id writes them.
		{"Alice@Example.com", "alice-at-example-dot-com"},
		{"user-1", "user-1"},
		{"-x", "a--x"},
		{"abc==", "abc"},
		{"a+b", "a-b"},
		{"x-", "x"},
		{strings.Repeat("a", 300), strings.Repeat("a", 253)},
		{"u1", "u1"},
	} {
		got, err := kubestore.LangflowSecretName(tc.userID)
		require.NoError(t, err, tc.userID)
		assert.Equal(t, tc.want, got, tc.userID)
	}
	for _, bad := range []string{"", "===", "a/b", "snake_case", "ünï", "two words"} {
		_, err := kubestore.LangflowSecretName(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// FuzzLangflowSecretName: any user ID gives a valid Secret name or an
// error, never a panic; UUIDs always give "uuid-<lower case>".
func FuzzLangflowSecretName(f *testing.F) {
	for _, s := range []string{"0b5e1ad2-5c1f-4a3e-9d7e-2f0c8a6b4e11", "Alice@Example.com", "-x", "==", "ß", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, userID string) {
		name, err := kubestore.LangflowSecretName(userID)
		if err != nil {
			return
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Fatalf("%q gives invalid name %q: %v", userID, name, errs)
		}
		if ids.Valid(userID) && name != "uuid-"+strings.ToLower(userID) {
			t.Fatalf("UUID %q gives %q", userID, name)
		}
	})
}

func fakeStore(t *testing.T, cfg kubestore.Config) (*kubestore.Store, kubernetes.Interface) {
	t.Helper()
	client := fake.NewClientset()
	cfg.Client = client
	if !cfg.EncryptCredentials && cfg.Keyring == nil {
		cfg.Keyring = testKeyring(t)
	}
	s, err := kubestore.New(cfg)
	require.NoError(t, err)
	return s, client
}

func TestNewConfig(t *testing.T) {
	client := fake.NewClientset()
	for _, tc := range []struct {
		name string
		cfg  kubestore.Config
		ok   bool
	}{
		{"no client", kubestore.Config{Keyring: testKeyring(t)}, false},
		{"nil pointer client", kubestore.Config{Client: (*fake.Clientset)(nil), Keyring: testKeyring(t)}, false},
		{"no keyring for clear Credentials", kubestore.Config{Client: client}, false},
		{"zero keyring", kubestore.Config{Client: client, Keyring: &secrets.Keyring{}}, false},
		{"clear Credentials", kubestore.Config{Client: client, Keyring: testKeyring(t)}, true},
		{"encrypted Credentials", kubestore.Config{Client: client, EncryptCredentials: true}, true},
		{"bad namespace", kubestore.Config{Client: client, EncryptCredentials: true, Namespace: "Team_A"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := kubestore.New(tc.cfg)
			if !tc.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "langflow", s.Namespace())
		})
	}
}

func TestNamesASecretKeyCannotHold(t *testing.T) {
	ctx := context.Background()
	s, client := fakeStore(t, kubestore.Config{})
	svc, err := variables.NewService(variables.ServiceConfig{Store: s, Keyring: testKeyring(t)})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		typ  variables.Type
	}{
		{"two words", variables.Credential},
		{"ünïcödé", variables.Generic},
		{"..dots", variables.Generic},
		{"Credential_X", variables.Generic}, // Langflow would read it as the Credential X
		{strings.Repeat("A", 243), variables.Credential},
		{strings.Repeat("A", 254), variables.Generic},
	} {
		_, err := svc.Create(ctx, "u1", variables.CreateInput{Name: tc.name, Value: "v", Type: tc.typ})
		require.Error(t, err, tc.name)
		assert.ErrorIs(t, err, variables.ErrInvalidName, tc.name)
		assert.NotErrorIs(t, err, variables.ErrUnavailable, "%s: a refused name is a 400, not a 503", tc.name)
		var ve *variables.ValidationError
		require.True(t, errors.As(err, &ve))
		assert.Contains(t, ve.Message, "Kubernetes Secret")
	}
	// The longest names that fit; a Credential may be named Credential_X.
	for _, in := range []variables.CreateInput{
		{Name: strings.Repeat("A", 242), Value: "v"},
		{Name: strings.Repeat("B", 253), Value: "v", Type: variables.Generic},
		{Name: "Credential_X", Value: "v", Type: variables.Credential},
		{Name: "dotted.name-9_x", Value: "v", Type: variables.Generic},
	} {
		_, err := svc.Create(ctx, "u1", in)
		assert.NoError(t, err, in.Name)
	}
	sec, err := client.CoreV1().Secrets("langflow").Get(ctx, "u1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, sec.Data, "Credential_Credential_X")
	assert.Len(t, sec.Data, 4, "nothing was written for the refused names")
}

func TestCredentialValues(t *testing.T) {
	ctx := context.Background()
	k := testKeyring(t)
	for _, tc := range []struct {
		name    string
		cfg     kubestore.Config
		inClear bool
	}{
		{"in clear by default, as Langflow", kubestore.Config{Keyring: k}, true},
		{"encrypted as an opt-in", kubestore.Config{EncryptCredentials: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, client := fakeStore(t, tc.cfg)
			svc, err := variables.NewService(variables.ServiceConfig{Store: s, Keyring: k})
			require.NoError(t, err)
			v, err := svc.Create(ctx, "u1", variables.CreateInput{Name: "KEY", Value: "sk-1"})
			require.NoError(t, err)
			sec, err := client.CoreV1().Secrets("langflow").Get(ctx, "u1", metav1.GetOptions{})
			require.NoError(t, err)
			stored := string(sec.Data["Credential_KEY"])
			if tc.inClear {
				assert.Equal(t, "sk-1", stored)
			} else {
				assert.True(t, secrets.IsEncrypted(stored))
				assert.NotContains(t, stored, "sk-1")
			}
			// Reading, updating and resolving work the same either way.
			value := "sk-2"
			_, err = svc.Update(ctx, "u1", v.ID, variables.Patch{Value: &value})
			require.NoError(t, err)
			got, err := svc.Value(ctx, "u1", "KEY")
			require.NoError(t, err)
			assert.Equal(t, "sk-2", got)
			fields := []string{"api_key"}
			_, err = svc.Update(ctx, "u1", v.ID, variables.Patch{DefaultFields: &fields})
			require.NoError(t, err, "an update that keeps the value compares it as stored")
		})
	}
}

// TestSecretOfAnotherUser: two user IDs that map to one Secret name do not
// share variables: the second is refused with an error that says why.
func TestSecretOfAnotherUser(t *testing.T) {
	ctx := context.Background()
	s, _ := fakeStore(t, kubestore.Config{})
	v := variables.Variable{ID: ids.New(), UserID: "Bob", Name: "K", Value: "v", Type: variables.Generic}
	require.NoError(t, s.Create(ctx, v))
	_, err := s.ListByUser(ctx, "bob") // also the Secret "bob"
	assert.ErrorIs(t, err, variables.ErrUnavailable)
	assert.ErrorContains(t, err, "another user ID")
	v.UserID, v.ID = "bob", ids.New()
	assert.ErrorIs(t, s.Create(ctx, v), variables.ErrUnavailable)
	list, err := s.ListByUser(ctx, "Bob")
	require.NoError(t, err)
	assert.Len(t, list, 1)
}

// TestBrokenAnnotation: metadata edited into something unreadable does not
// make the variables unreadable: they read as Langflow's would.
func TestBrokenAnnotation(t *testing.T) {
	ctx := context.Background()
	s, client := fakeStore(t, kubestore.Config{Namespace: "ns"})
	secretsAPI := client.CoreV1().Secrets("ns")
	_, err := secretsAPI.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "u1", Annotations: map[string]string{kubestore.MetadataAnnotation: "{not json"}},
		Data:       map[string][]byte{"A": []byte("1"), "Credential_": []byte("no name")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	list, err := s.ListByUser(ctx, "u1")
	require.NoError(t, err)
	require.Len(t, list, 1, "a bare Credential_ key is no variable")
	assert.Equal(t, "A", list[0].Name)
	assert.True(t, ids.Valid(list[0].ID))

	// A write records the metadata and keeps the key that is no variable.
	require.NoError(t, s.Delete(ctx, "u1", list[0].ID))
	sec, err := secretsAPI.Get(ctx, "u1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"Credential_": []byte("no name")}, sec.Data)
	assert.JSONEq(t, `{}`, sec.Annotations[kubestore.MetadataAnnotation])
}
