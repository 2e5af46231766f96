// Package kubestore is a variables.Store on Kubernetes Secrets, in Langflow's
// layout (LANGFLOW_VARIABLE_STORE=kubernetes), so that a Go service and a
// Langflow on one cluster see the same global variables.
//
// # Layout
//
// One Secret per user, in namespace "langflow" (Config.Namespace), named as
// Langflow names it (LangflowSecretName: "uuid-<user id>" for Langflow's
// UUID user IDs; Config.SecretName to change it). Each variable is one data
// key: "Credential_<NAME>" for a Credential, "<NAME>" for a Generic variable;
// the value is the variable's value (base64 in the API, as Kubernetes
// encodes every Secret value). What Langflow's layout has no place for is
// kept in annotations, which Langflow neither reads nor removes:
// MetadataAnnotation holds each variable's ID, default_fields, created and
// updated times and origin (JSON keyed by data key), UserAnnotation the user
// ID; Label marks the Secrets keyflow wrote. A variable Langflow wrote has
// no metadata: it reads with an ID derived from the namespace, Secret name
// and key (stable from one read to the next), the Secret's creation time,
// no update time and OriginUser, and keeps them once keyflow writes the
// Secret. When the last variable of a user goes, the Secret is deleted
// (Langflow cannot read a Secret without data).
//
// # Credential values
//
// By default a Credential's value is kept in clear in the Secret, as
// Langflow keeps it, and Kubernetes' encryption at rest protects it: the
// Store opens the Fernet tokens the variables.Service gives it with
// Config.Keyring before writing, and reads return the plaintext, which the
// Service takes as a legacy plaintext Credential. With
// Config.EncryptCredentials the tokens are kept as given: the values are
// safe in etcd backups and from anyone who may read the Secrets but not
// hold the master secret, but Langflow cannot use them (it would send the
// token as the key).
//
// # Concurrency
//
// Every write reads the Secret and replaces it with the resourceVersion it
// read; when another writer (this process, another replica, Langflow) got
// there first the API server answers Conflict, and the Store reads again,
// checks again (a name taken meanwhile, a variable changed since the
// caller's read) and retries, so concurrent writers never lose an update.
// A Store is safe for concurrent use and logs nothing.
//
// # Errors
//
// Store failures (API server unreachable or failing, RBAC refusal, a Secret
// the API server rejects) wrap variables.ErrUnavailable and the client-go
// error; an RBAC refusal also wraps ErrForbidden. Error texts name Secrets,
// keys and IDs, never values.
//
// # Differences from the variables.Store contract
//
// Kubernetes forces three, which the conformance suite is told about
// (storetest.Config): names must be Secret data keys (ASCII letters, digits,
// '-', '_' and '.', at most 253 bytes with the Credential_ prefix), and a
// Generic name cannot start with "Credential_"; other names are refused
// with an error matching variables.ErrInvalidName (variables.InvalidNameError).
// IDs are unique per user, not across users: each user's variables are one
// Secret, and Kubernetes has no constraint across objects (the Service makes
// random UUIDs, so IDs do not collide). By default a Credential value that is
// a token Config.Keyring opens reads back as its plaintext, not as the token
// written.
//
// Other limits come from Kubernetes: a Secret holds at most 1 MiB of values
// and 256 KiB of annotations, so a user has at most a few thousand
// variables; a write more is refused by the API server (an ErrUnavailable
// error that says so). ListCiphertexts and SwapCiphertext (master-secret
// rotation) see only the Secrets keyflow has written (Label): Langflow's
// own Secrets hold no tokens.
package kubestore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/keyflow-dev/keyflow/internal/isnil"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// DefaultNamespace is Langflow's namespace for variable Secrets.
const DefaultNamespace = "langflow"

// ErrForbidden is wrapped (with variables.ErrUnavailable) by the errors of
// calls the API server refused for lack of RBAC permission. The Store needs
// get, list, create, update and delete on secrets in its namespace.
var ErrForbidden = errors.New("kubestore: the API server refused access to Secrets (RBAC): the Store needs get, list, create, update and delete on secrets in its namespace")

// Config configures New. Client is required, and Keyring unless
// EncryptCredentials is set.
type Config struct {
	// Client talks to the API server; see DefaultClient. Its rate limits
	// apply to the Store (client-go's default of 5 requests a second is
	// too low for a server: DefaultClient raises it).
	Client kubernetes.Interface
	// Namespace holds the Secrets; "" means DefaultNamespace ("langflow").
	Namespace string
	// SecretName names a user's Secret; nil means LangflowSecretName. It
	// must give distinct users distinct names (the Store refuses to mix
	// the variables of two user IDs in one Secret) and valid Secret names.
	SecretName func(userID string) (string, error)
	// Keyring opens the Fernet tokens of Credential values, so that the
	// Secret holds the plaintext as Langflow writes it. Required unless
	// EncryptCredentials is set (it is then unused).
	Keyring *secrets.Keyring
	// EncryptCredentials keeps Credential values as the Fernet tokens the
	// Service makes (under the master secret) instead of in clear.
	// Langflow cannot use variables kept this way.
	EncryptCredentials bool
}

// Store is a variables.Store on Kubernetes Secrets. Make one with New; the
// zero value is not usable. It is safe for concurrent use and logs nothing.
type Store struct {
	secrets    corev1client.SecretInterface
	namespace  string
	secretName func(userID string) (string, error)
	keyring    *secrets.Keyring
	encrypt    bool
	// located remembers, from ListCiphertexts, which Secret holds a
	// variable ID, so that SwapCiphertext need not search them all.
	located sync.Map // variable ID → Secret name
}

var _ variables.Store = (*Store)(nil)

// New returns a Store. It does not contact the API server.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil || isnil.Value(cfg.Client) {
		return nil, errors.New("kubestore: Config.Client is required")
	}
	if !cfg.EncryptCredentials && (cfg.Keyring == nil || cfg.Keyring.Derivation() == "") {
		return nil, errors.New("kubestore: Config.Keyring (made by secrets.NewKeyring or secrets.Load) is required " +
			"to keep Credential values in clear as Langflow does; set Config.EncryptCredentials to keep them encrypted")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if errs := validation.IsDNS1123Label(cfg.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("kubestore: namespace %q: %s", cfg.Namespace, strings.Join(errs, "; "))
	}
	if cfg.SecretName == nil {
		cfg.SecretName = LangflowSecretName
	}
	return &Store{
		secrets:    cfg.Client.CoreV1().Secrets(cfg.Namespace),
		namespace:  cfg.Namespace,
		secretName: cfg.SecretName,
		keyring:    cfg.Keyring,
		encrypt:    cfg.EncryptCredentials,
	}, nil
}

// Namespace returns the namespace the Store keeps its Secrets in.
func (s *Store) Namespace() string { return s.namespace }

// maxWriteAttempts bounds the conflict retries of one write. Every conflict
// means another writer succeeded, so a write that loses this many times in
// a row is under a load no Secret can take.
const maxWriteAttempts = 64

// entry is one variable of a Secret: its data key, value and metadata.
type entry struct {
	key   string
	value string
	meta  meta
}

// state is a Secret as read, and the edits to write back.
type state struct {
	secret *corev1.Secret // nil: there is no Secret yet
	name   string         // the Secret's name
	vars   map[string]*entry
	// other holds the data keys that are no variable (a bare
	// "Credential_"), kept as they are.
	other map[string][]byte
}

func (st *state) byID(id string) *entry {
	for _, e := range st.vars {
		if e.meta.ID == id {
			return e
		}
	}
	return nil
}

// byName finds a variable by name, the Generic one first, as Langflow's
// resolve_variable does when both "NAME" and "Credential_NAME" exist.
func (st *state) byName(name string) *entry {
	if e := st.vars[name]; e != nil && !strings.HasPrefix(name, CredentialPrefix) {
		return e
	}
	return st.vars[CredentialPrefix+name]
}

// nameTaken reports whether a variable other than except has this name,
// as a Generic or a Credential.
func (st *state) nameTaken(name string, except *entry) bool {
	keys := []string{CredentialPrefix + name}
	if !strings.HasPrefix(name, CredentialPrefix) {
		keys = append(keys, name)
	}
	for _, k := range keys {
		if e := st.vars[k]; e != nil && e != except {
			return true
		}
	}
	return false
}

func (e *entry) variable(userID string) variables.Variable {
	name, typ, _ := parseKey(e.key)
	v := variables.Variable{
		ID:            e.meta.ID,
		UserID:        userID,
		Name:          name,
		Value:         e.value,
		Type:          typ,
		DefaultFields: slices.Clone(e.meta.DefaultFields),
		CreatedAt:     e.meta.CreatedAt,
		Origin:        e.meta.Origin,
	}
	if v.DefaultFields == nil {
		v.DefaultFields = []string{}
	}
	if e.meta.UpdatedAt != nil {
		v.UpdatedAt = *e.meta.UpdatedAt
	}
	return v
}

func (st *state) list(userID string) []variables.Variable {
	out := make([]variables.Variable, 0, len(st.vars))
	for _, e := range st.vars {
		out = append(out, e.variable(userID))
	}
	slices.SortFunc(out, func(a, b variables.Variable) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out
}

// errOtherUser: the Secret a user ID maps to records another user ID.
var errOtherUser = errors.New("holds the variables of another user ID (two user IDs map to one Secret name; set Config.SecretName to tell them apart)")

// parse makes the state of sec (nil: no Secret). userID "" skips the check
// that the Secret is the user's.
func (s *Store) parse(name string, sec *corev1.Secret, userID string) (*state, error) {
	st := &state{secret: sec, name: name, vars: map[string]*entry{}, other: map[string][]byte{}}
	if sec == nil {
		return st, nil
	}
	if owner, ok := sec.Annotations[UserAnnotation]; ok && userID != "" && owner != userID {
		return nil, fmt.Errorf("%w: kubestore: Secret %s/%s %w", variables.ErrUnavailable, s.namespace, name, errOtherUser)
	}
	metas := decodeMeta(sec)
	for key, value := range sec.Data {
		if _, _, ok := parseKey(key); !ok {
			st.other[key] = value
			continue
		}
		m, ok := metas[key]
		if !ok {
			m = synthesized(s.namespace, name, key, sec.CreationTimestamp.Time)
		}
		st.vars[key] = &entry{key: key, value: string(value), meta: m}
	}
	return st, nil
}

// read gets and parses the user's Secret.
func (s *Store) read(ctx context.Context, name, userID string) (*state, error) {
	sec, err := s.secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		sec, err = nil, nil
	}
	if err != nil {
		return nil, s.fail(ctx, "read", name, err)
	}
	return s.parse(name, sec, userID)
}

// write stores st with the resourceVersion it was read at: the Secret is
// created when there was none, deleted when no data remains, else
// replaced. A Conflict, AlreadyExists or NotFound answer means another
// writer came first; the caller reads again and retries.
func (s *Store) write(ctx context.Context, st *state, userID string) error {
	data := maps.Clone(st.other)
	metas := make(map[string]meta, len(st.vars))
	for key, e := range st.vars {
		data[key] = []byte(e.value)
		metas[key] = e.meta
	}
	if len(data) == 0 {
		if st.secret == nil {
			return nil
		}
		uid, rv := st.secret.UID, st.secret.ResourceVersion
		return s.secrets.Delete(ctx, st.name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
		})
	}
	metaJSON, err := json.Marshal(metas)
	if err != nil {
		return err
	}
	sec := st.secret.DeepCopy()
	if sec == nil {
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: st.name, Namespace: s.namespace},
			Type:       corev1.SecretTypeOpaque,
		}
	}
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	if sec.Labels == nil {
		sec.Labels = map[string]string{}
	}
	sec.Annotations[MetadataAnnotation] = string(metaJSON)
	if userID != "" {
		sec.Annotations[UserAnnotation] = userID
	}
	sec.Labels[Label] = "true"
	sec.Data, sec.StringData = data, nil
	if st.secret == nil {
		_, err = s.secrets.Create(ctx, sec, metav1.CreateOptions{})
	} else {
		_, err = s.secrets.Update(ctx, sec, metav1.UpdateOptions{})
	}
	return err
}

// modify reads the Secret, lets change edit it, and writes it back, until
// the write is not overtaken by another writer. change returns false to
// write nothing, or an error (an outcome such as ErrNotFound) to stop.
func (s *Store) modify(ctx context.Context, name, userID string, change func(st *state) (bool, error)) error {
	for attempt := 1; ; attempt++ {
		st, err := s.read(ctx, name, userID)
		if err != nil {
			return err
		}
		if ok, err := change(st); err != nil || !ok {
			return err
		}
		err = s.write(ctx, st, userID)
		switch {
		case err == nil:
			return nil
		case !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err):
			return s.fail(ctx, "write", name, err)
		case attempt == maxWriteAttempts:
			return s.fail(ctx, "write", name, fmt.Errorf("overtaken by other writers %d times in a row: %w", attempt, err))
		}
		// Another writer came first: wait a little (random, growing) so
		// that writers overtaking each other spread out, then read again.
		backoff := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 7)))
		select {
		case <-ctx.Done():
			return s.fail(ctx, "write", name, ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// fail wraps a client-go error: always ErrUnavailable, ErrForbidden for an
// RBAC refusal, and ctx's error when ctx is done (client-go does not always
// wrap it).
func (s *Store) fail(ctx context.Context, op, name string, err error) error {
	where := fmt.Sprintf("kubestore: %s Secret %s/%s", op, s.namespace, name)
	if name == "" {
		where = fmt.Sprintf("kubestore: %s Secrets in namespace %s", op, s.namespace)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%w: %s: %w: %w", variables.ErrUnavailable, where, ErrForbidden, err)
	}
	return fmt.Errorf("%w: %s: %w", variables.ErrUnavailable, where, err)
}

// userSecret is the name of the user's Secret.
func (s *Store) userSecret(userID string) (string, error) {
	name, err := s.secretName(userID)
	if err != nil {
		return "", fmt.Errorf("%w: %w", variables.ErrUnavailable, err)
	}
	return name, nil
}

// stored is the value kept in the Secret for v: by default a Credential
// token that the keyring opens is kept as its plaintext.
func (s *Store) stored(v variables.Variable) string {
	if v.Type == variables.Credential && !s.encrypt && secrets.IsEncrypted(v.Value) {
		if plain, err := s.keyring.Decrypt(v.Value); err == nil {
			return plain
		}
	}
	return v.Value
}

// Create implements variables.Store: ErrDuplicate if the user has a
// variable named v.Name (of either type) or with ID v.ID; an error matching
// variables.ErrInvalidName if a Secret key cannot hold the name.
func (s *Store) Create(ctx context.Context, v variables.Variable) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := dataKey(v.Name, v.Type)
	if err != nil {
		return err
	}
	name, err := s.userSecret(v.UserID)
	if err != nil {
		return err
	}
	value := s.stored(v)
	return s.modify(ctx, name, v.UserID, func(st *state) (bool, error) {
		if st.byID(v.ID) != nil || st.nameTaken(v.Name, nil) {
			return false, variables.ErrDuplicate
		}
		st.vars[key] = &entry{key: key, value: value, meta: metaOf(v)}
		return true, nil
	})
}

// Get implements variables.Store.
func (s *Store) Get(ctx context.Context, userID, id string) (variables.Variable, error) {
	return s.find(ctx, userID, func(st *state) *entry { return st.byID(id) })
}

// GetByName implements variables.Store. When a Secret written by Langflow
// holds both "NAME" and "Credential_NAME", the Generic one is returned, as
// Langflow resolves the name.
func (s *Store) GetByName(ctx context.Context, userID, name string) (variables.Variable, error) {
	return s.find(ctx, userID, func(st *state) *entry { return st.byName(name) })
}

func (s *Store) find(ctx context.Context, userID string, pick func(*state) *entry) (variables.Variable, error) {
	if err := ctx.Err(); err != nil {
		return variables.Variable{}, err
	}
	name, err := s.userSecret(userID)
	if err != nil {
		return variables.Variable{}, err
	}
	st, err := s.read(ctx, name, userID)
	if err != nil {
		return variables.Variable{}, err
	}
	e := pick(st)
	if e == nil {
		return variables.Variable{}, variables.ErrNotFound
	}
	return e.variable(userID), nil
}

// ListByUser implements variables.Store: one GET of the user's Secret.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]variables.Variable, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, err := s.userSecret(userID)
	if err != nil {
		return nil, err
	}
	st, err := s.read(ctx, name, userID)
	if err != nil {
		return nil, err
	}
	return st.list(userID), nil
}

// Update implements variables.Store. prev's Value is compared as it would
// be stored (a Credential token the keyring opens, as its plaintext).
func (s *Store) Update(ctx context.Context, prev, next variables.Variable) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := dataKey(next.Name, next.Type)
	if err != nil {
		return err
	}
	name, err := s.userSecret(next.UserID)
	if err != nil {
		return err
	}
	prevValue, value := s.stored(prev), s.stored(next)
	return s.modify(ctx, name, next.UserID, func(st *state) (bool, error) {
		cur := st.byID(next.ID)
		if cur == nil {
			return false, variables.ErrNotFound
		}
		curUpdated := time.Time{}
		if cur.meta.UpdatedAt != nil {
			curUpdated = *cur.meta.UpdatedAt
		}
		if cur.value != prevValue || cur.meta.Origin != prev.Origin || !curUpdated.Equal(prev.UpdatedAt) {
			return false, variables.ErrConflict
		}
		if key != cur.key && st.nameTaken(next.Name, cur) {
			return false, variables.ErrDuplicate
		}
		m := metaOf(next)
		m.ID, m.CreatedAt = cur.meta.ID, cur.meta.CreatedAt
		delete(st.vars, cur.key)
		st.vars[key] = &entry{key: key, value: value, meta: m}
		return true, nil
	})
}

// Delete implements variables.Store. Deleting a user's last variable
// deletes the Secret.
func (s *Store) Delete(ctx context.Context, userID, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := s.userSecret(userID)
	if err != nil {
		return err
	}
	return s.modify(ctx, name, userID, func(st *state) (bool, error) {
		cur := st.byID(id)
		if cur == nil {
			return false, variables.ErrNotFound
		}
		delete(st.vars, cur.key)
		return true, nil
	})
}

// listPage is how many Secrets one LIST call of ListCiphertexts asks for.
const listPage = 200

// ListCiphertexts implements secrets.CiphertextStore over the Secrets
// keyflow has written (Label), of every user: the values that are Fernet
// tokens, by ID ascending; limit <= 0 means no limit. Each call lists the
// Secrets of the namespace, in pages.
func (s *Store) ListCiphertexts(ctx context.Context, after string, limit int) ([]secrets.Ciphertext, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []secrets.Ciphertext
	opts := metav1.ListOptions{LabelSelector: Label, Limit: listPage}
	for {
		page, err := s.secrets.List(ctx, opts)
		if err != nil {
			return nil, s.fail(ctx, "list", "", err)
		}
		for i := range page.Items {
			sec := &page.Items[i]
			st, err := s.parse(sec.Name, sec, "")
			if err != nil {
				return nil, err
			}
			for _, e := range st.vars {
				if secrets.IsEncrypted(e.value) {
					s.located.Store(e.meta.ID, sec.Name)
					if e.meta.ID > after {
						out = append(out, secrets.Ciphertext{ID: e.meta.ID, Token: e.value})
					}
				}
			}
		}
		if opts.Continue = page.Continue; opts.Continue == "" {
			break
		}
	}
	slices.SortFunc(out, func(a, b secrets.Ciphertext) int { return strings.Compare(a.ID, b.ID) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// SwapCiphertext implements secrets.CiphertextStore: it replaces the value
// of the variable with this ID if it still is oldToken, keeping its
// metadata. It looks in the Secret ListCiphertexts last saw the ID in, and
// else lists the Secrets keyflow has written.
func (s *Store) SwapCiphertext(ctx context.Context, id, oldToken, newToken string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	name, ok := s.located.Load(id)
	if !ok {
		if _, err := s.ListCiphertexts(ctx, "", 0); err != nil {
			return false, err
		}
		if name, ok = s.located.Load(id); !ok {
			return false, nil
		}
	}
	swapped := false
	err := s.modify(ctx, name.(string), "", func(st *state) (bool, error) {
		swapped = false // a retry decides again
		cur := st.byID(id)
		if cur == nil || cur.value != oldToken {
			return false, nil
		}
		cur.value, swapped = newToken, true
		return true, nil
	})
	if err != nil {
		return false, err
	}
	if !swapped {
		s.located.Delete(id)
	}
	return swapped, nil
}
