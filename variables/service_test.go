package variables_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

func TestNewServiceRequiresKeyring(t *testing.T) {
	_, err := variables.NewService(variables.ServiceConfig{})
	assert.Error(t, err)
	s, err := variables.NewService(variables.ServiceConfig{Keyring: keyring(t)})
	require.NoError(t, err)
	assert.NotNil(t, s.Store(), "nil Store means a memory store")
	_, err = variables.NewService(variables.ServiceConfig{Keyring: keyring(t), Store: (*variables.MemoryStore)(nil)})
	assert.ErrorContains(t, err, "nil pointer", "a typed-nil Store is refused (issue 13 item 10)")
	_, err = variables.NewService(variables.ServiceConfig{Keyring: &secrets.Keyring{}})
	assert.ErrorContains(t, err, "not made by secrets.NewKeyring", "a zero Keyring would fail every Credential with a 500")
}

// TestCreateValidation ports the 400 cases of Langflow's
// api/v1/test_variable.py (docs/langflow-compatibility.md#variable-rules-and-messages): the four messages, in Langflow's order,
// plus keyflow's own checks.
func TestCreateValidation(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	_, err := s.Create(ctx, "u1", variables.CreateInput{Name: "TAKEN", Value: "v"})
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		in   variables.CreateInput
		want error
		msg  string
	}{
		{"both empty", variables.CreateInput{}, variables.ErrEmptyNameAndValue, "Variable name and value cannot be empty"},
		{"both empty beats bad type", variables.CreateInput{Type: "Bogus"}, variables.ErrEmptyNameAndValue, "Variable name and value cannot be empty"},
		{"empty name", variables.CreateInput{Value: "v"}, variables.ErrEmptyName, "Variable name cannot be empty"},
		{"empty value", variables.CreateInput{Name: "N"}, variables.ErrEmptyValue, "Variable value cannot be empty"},
		{"empty value beats duplicate", variables.CreateInput{Name: "TAKEN"}, variables.ErrEmptyValue, "Variable value cannot be empty"},
		{"name exists", variables.CreateInput{Name: "TAKEN", Value: "other"}, variables.ErrDuplicate, "Variable name already exists"},
		{"control character in name", variables.CreateInput{Name: "A\nB", Value: "v"}, variables.ErrInvalidName, variables.ErrInvalidName.Message + " (name holds the invisible or control character U+000A)"},
		{"invalid UTF-8 name", variables.CreateInput{Name: "A\xff", Value: "v"}, variables.ErrInvalidName, variables.ErrInvalidName.Message + " (name is not valid UTF-8)"},
		{"name too long", variables.CreateInput{Name: strings.Repeat("n", 256), Value: "v"}, variables.ErrInvalidName, variables.ErrInvalidName.Message + " (name is longer than 255 bytes)"},
		// Issue 13 item 8: names that look like others, and what "\ud800" decodes to.
		{"NUL in name", variables.CreateInput{Name: "A\x00", Value: "v"}, variables.ErrInvalidName, variables.ErrInvalidName.Message + " (name holds the invisible or control character U+0000)"},
		{"zero-width space in name", variables.CreateInput{Name: "OPENAI\u200b_API_KEY", Value: "v"}, variables.ErrInvalidName, variables.ErrInvalidName.Message + " (name holds the invisible or control character U+200B)"},
		{"bidi override in name", variables.CreateInput{Name: "\u202eYEK", Value: "v"}, variables.ErrInvalidName, variables.ErrInvalidName.Message + " (name holds the invisible or control character U+202E)"},
		{"U+FFFD in name", variables.CreateInput{Name: "A\ufffd", Value: "v"}, variables.ErrInvalidName, variables.ErrInvalidName.Message + " (name holds U+FFFD, the replacement character (an unpaired surrogate escape or invalid input))"},
		{"NUL in default_fields", variables.CreateInput{Name: "N", Value: "v", DefaultFields: []string{"a\x00"}}, variables.ErrInvalidDefaultFields, variables.ErrInvalidDefaultFields.Message + " (entry 0 holds the invisible or control character U+0000)"},
		{"empty default_fields entry", variables.CreateInput{Name: "N", Value: "v", DefaultFields: []string{"api_key", ""}}, variables.ErrInvalidDefaultFields, variables.ErrInvalidDefaultFields.Message + " (entry 1 is empty)"},
		{"huge default_fields entry", variables.CreateInput{Name: "N", Value: "v", DefaultFields: []string{strings.Repeat("f", 100<<10)}}, variables.ErrInvalidDefaultFields, variables.ErrInvalidDefaultFields.Message + " (entry 0 is longer than 255 bytes)"},
		{"too many default_fields", variables.CreateInput{Name: "N", Value: "v", DefaultFields: make([]string, 20000)}, variables.ErrInvalidDefaultFields, variables.ErrInvalidDefaultFields.Message + " (more than 64 entries)"},
		{"unknown type", variables.CreateInput{Name: "N", Value: "v", Type: "Secret"}, variables.ErrInvalidType, variables.ErrInvalidType.Message},
		{"NUL in Generic value", variables.CreateInput{Name: "N", Value: "a\x00b", Type: variables.Generic}, variables.ErrInvalidValue, variables.ErrInvalidValue.Message},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(ctx, "u1", tc.in)
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, tc.msg, err.Error())
			var ve *variables.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.msg, ve.Message)
		})
	}
	_, err = s.Create(ctx, "u1", variables.CreateInput{Name: "TAKEN", Value: "x"})
	require.ErrorIs(t, err, variables.ErrDuplicate)
	var dup *variables.ValidationError
	require.ErrorAs(t, err, &dup, "a duplicate name is a validation error (400)")
	assert.Equal(t, "Variable name already exists", dup.Message)
	_, err = s.Create(ctx, "u2", variables.CreateInput{Name: "TAKEN", Value: "x"})
	assert.NoError(t, err, "names are per user")
	// A NUL in a Credential value is fine: it is stored encrypted.
	_, err = s.Create(ctx, "u1", variables.CreateInput{Name: "BIN", Value: "a\x00b"})
	assert.NoError(t, err)
}

// TestCreateDefaultsToCredential ports test_service.py's create test:
// the default type is Credential, the stored value is encrypted, and
// updated_at is unset.
func TestCreateDefaultsToCredential(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	v, err := s.Create(ctx, "u1", variables.CreateInput{Name: "OPENAI_API_KEY", Value: "sk-123", DefaultFields: []string{"OpenAI", "api_key"}})
	require.NoError(t, err)
	assert.Equal(t, variables.Credential, v.Type)
	assert.NotEqual(t, "sk-123", v.Value)
	assert.True(t, secrets.IsEncrypted(v.Value))
	assert.True(t, ids.Valid(v.ID))
	assert.Equal(t, variables.OriginUser, v.Origin)
	assert.False(t, v.CreatedAt.IsZero())
	assert.True(t, v.UpdatedAt.IsZero(), "updated_at is None on create")
	assert.Equal(t, []string{"OpenAI", "api_key"}, v.DefaultFields)

	g, err := s.Create(ctx, "u1", variables.CreateInput{Name: "REGION", Value: "eu-west-1", Type: variables.Generic})
	require.NoError(t, err)
	assert.Equal(t, "eu-west-1", g.Value, "Generic is stored as given (#10565)")
	assert.NotNil(t, g.DefaultFields)
}

// TestValueRoundTrip ports get_variable (docs/langflow-compatibility.md#variable-types): the value decrypts, a
// missing name or an empty stored value is not found.
func TestValueRoundTrip(t *testing.T) {
	ctx := context.Background()
	store := variables.NewMemoryStore()
	s := newService(t, store)
	_, err := s.Create(ctx, "u1", variables.CreateInput{Name: "K", Value: "secret value"})
	require.NoError(t, err)
	got, err := s.Value(ctx, "u1", "K")
	require.NoError(t, err)
	assert.Equal(t, "secret value", got)

	_, err = s.Value(ctx, "u1", "MISSING")
	assert.ErrorIs(t, err, variables.ErrNotFound)
	_, err = s.Value(ctx, "u2", "K")
	assert.ErrorIs(t, err, variables.ErrNotFound, "another user's variable")

	require.NoError(t, store.Create(ctx, variables.Variable{ID: ids.New(), UserID: "u1", Name: "EMPTY", Type: variables.Generic}))
	_, err = s.Value(ctx, "u1", "EMPTY")
	assert.ErrorIs(t, err, variables.ErrNotFound, "an empty value counts as not found")
}

// TestLegacyValues: rows written by older Langflow versions still read.
func TestLegacyValues(t *testing.T) {
	ctx := context.Background()
	store := variables.NewMemoryStore()
	s := newService(t, store)
	k := keyring(t)
	token, err := k.Encrypt("generic encrypted by Langflow < 1.7")
	require.NoError(t, err)
	other, err := secrets.NewKeyring("some-other-secret-0123456789-abcdefg")
	require.NoError(t, err)
	foreign, err := other.Encrypt("does not open")
	require.NoError(t, err)
	rows := []variables.Variable{
		{Name: "LEGACY_GENERIC", Type: variables.Generic, Value: token},
		{Name: "PLAIN_CREDENTIAL", Type: variables.Credential, Value: "plaintext from an old import"},
		{Name: "GENERIC_LOOKS_ENCRYPTED", Type: variables.Generic, Value: foreign},
		{Name: "FOREIGN_CREDENTIAL", Type: variables.Credential, Value: foreign},
	}
	for i := range rows {
		rows[i].ID, rows[i].UserID, rows[i].Origin = ids.New(), "u1", variables.OriginUser
		require.NoError(t, store.Create(ctx, rows[i]))
	}
	for _, tc := range []struct{ name, want string }{
		{"LEGACY_GENERIC", "generic encrypted by Langflow < 1.7"},
		{"PLAIN_CREDENTIAL", "plaintext from an old import"},
		{"GENERIC_LOOKS_ENCRYPTED", foreign}, // Langflow: "Assuming plaintext"
	} {
		got, err := s.Value(ctx, "u1", tc.name)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, got, tc.name)
	}
	_, err = s.Value(ctx, "u1", "FOREIGN_CREDENTIAL")
	require.ErrorIs(t, err, secrets.ErrInvalidToken)
	assert.NotContains(t, err.Error(), foreign)

	list, err := s.List(ctx, "u1")
	require.NoError(t, err)
	byName := map[string]variables.Variable{}
	for _, v := range list {
		byName[v.Name] = v
	}
	assert.Equal(t, "generic encrypted by Langflow < 1.7", byName["LEGACY_GENERIC"].Value)
	assert.Empty(t, byName["PLAIN_CREDENTIAL"].Value)
	assert.Empty(t, byName["FOREIGN_CREDENTIAL"].Value, "List never needs to decrypt a Credential")
}

// TestList ports the list behaviour (docs/langflow-compatibility.md#variable-types): Credential values null, Generic
// equal, "__x__" names hidden, oldest first.
func TestList(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	for _, in := range []variables.CreateInput{
		{Name: "CRED", Value: "c"},
		{Name: "GEN", Value: "g", Type: variables.Generic},
		{Name: "__enabled_models__", Value: "[]", Type: variables.Generic},
		{Name: "__", Value: "x", Type: variables.Generic},
		{Name: "__half", Value: "x", Type: variables.Generic},
	} {
		_, err := s.Create(ctx, "u1", in)
		require.NoError(t, err)
	}
	_, err := s.Create(ctx, "u2", variables.CreateInput{Name: "OTHER", Value: "o"})
	require.NoError(t, err)

	list, err := s.List(ctx, "u1")
	require.NoError(t, err)
	var names []string
	for _, v := range list {
		names = append(names, v.Name)
	}
	assert.Equal(t, []string{"CRED", "GEN", "__half"}, names)
	assert.Empty(t, list[0].Value)
	assert.Equal(t, "g", list[1].Value)

	empty, err := s.List(ctx, "nobody")
	require.NoError(t, err)
	assert.Empty(t, empty)
}

// TestUpdate ports update_variable and update_variable_fields
// (docs/langflow-compatibility.md#variable-endpoints): a new ciphertext, updated_at set, created_at kept, name/value/fields
// changed.
func TestUpdate(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	v, err := s.Create(ctx, "u1", variables.CreateInput{Name: "K", Value: "one"})
	require.NoError(t, err)

	u, err := s.Update(ctx, "u1", v.ID, variables.Patch{Value: ptr("two")})
	require.NoError(t, err)
	assert.NotEqual(t, v.Value, u.Value)
	assert.True(t, secrets.IsEncrypted(u.Value))
	assert.True(t, u.UpdatedAt.After(u.CreatedAt))
	assert.Equal(t, v.CreatedAt, u.CreatedAt)
	got, err := s.Value(ctx, "u1", "K")
	require.NoError(t, err)
	assert.Equal(t, "two", got)

	u2, err := s.Update(ctx, "u1", v.ID, variables.Patch{Name: ptr("K2"), Value: ptr("three"), DefaultFields: &[]string{"api_key"}})
	require.NoError(t, err)
	assert.Equal(t, "K2", u2.Name)
	assert.Equal(t, []string{"api_key"}, u2.DefaultFields)
	assert.True(t, u2.UpdatedAt.After(u.UpdatedAt))
	assert.Equal(t, v.CreatedAt, u2.CreatedAt)
	got, err = s.Value(ctx, "u1", "K2")
	require.NoError(t, err)
	assert.Equal(t, "three", got)

	// An empty string is a value, as in Langflow, and is encrypted.
	u3, err := s.Update(ctx, "u1", v.ID, variables.Patch{Value: ptr("")})
	require.NoError(t, err)
	assert.True(t, secrets.IsEncrypted(u3.Value))

	// Clearing default fields.
	u4, err := s.Update(ctx, "u1", v.ID, variables.Patch{DefaultFields: &[]string{}})
	require.NoError(t, err)
	assert.Empty(t, u4.DefaultFields)
}

func TestUpdateErrors(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	a, err := s.Create(ctx, "u1", variables.CreateInput{Name: "A", Value: "a"})
	require.NoError(t, err)
	_, err = s.Create(ctx, "u1", variables.CreateInput{Name: "B", Value: "b"})
	require.NoError(t, err)
	for _, tc := range []struct {
		name, user, id string
		p              variables.Patch
		want           error
	}{
		{"unknown id", "u1", ids.New(), variables.Patch{Value: ptr("x")}, variables.ErrNotFound},
		{"malformed id", "u1", "not-a-uuid", variables.Patch{}, variables.ErrNotFound},
		{"another user's id", "u2", a.ID, variables.Patch{Value: ptr("x")}, variables.ErrNotFound},
		{"rename onto existing", "u1", a.ID, variables.Patch{Name: ptr("B")}, variables.ErrDuplicate},
		{"empty name", "u1", a.ID, variables.Patch{Name: ptr("")}, variables.ErrEmptyName},
		{"bad name", "u1", a.ID, variables.Patch{Name: ptr("a\tb")}, variables.ErrInvalidName},
		{"bad type", "u1", a.ID, variables.Patch{Type: ptr(variables.Type("x"))}, variables.ErrInvalidType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Update(ctx, tc.user, tc.id, tc.p)
			assert.ErrorIs(t, err, tc.want)
		})
	}
	got, err := s.Value(ctx, "u1", "A")
	require.NoError(t, err)
	assert.Equal(t, "a", got, "failed updates change nothing")
}

// TestTypeChange: Generic → Credential encrypts the existing value (Langflow
// leaves it plaintext, docs/langflow-compatibility.md#variable-types); Credential → Generic stores the
// plaintext.
func TestTypeChange(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	g, err := s.Create(ctx, "u1", variables.CreateInput{Name: "G", Value: "was generic", Type: variables.Generic})
	require.NoError(t, err)
	c, err := s.Update(ctx, "u1", g.ID, variables.Patch{Type: ptr(variables.Credential)})
	require.NoError(t, err)
	assert.Equal(t, variables.Credential, c.Type)
	assert.True(t, secrets.IsEncrypted(c.Value), "Generic → Credential encrypts the stored value")
	got, err := s.Value(ctx, "u1", "G")
	require.NoError(t, err)
	assert.Equal(t, "was generic", got)

	// Type and value together: the new value follows the new type.
	c2, err := s.Update(ctx, "u1", g.ID, variables.Patch{Type: ptr(variables.Credential), Value: ptr("new")})
	require.NoError(t, err)
	assert.True(t, secrets.IsEncrypted(c2.Value))
	got, err = s.Value(ctx, "u1", "G")
	require.NoError(t, err)
	assert.Equal(t, "new", got)

	back, err := s.Update(ctx, "u1", g.ID, variables.Patch{Type: ptr(variables.Generic), Value: ptr("public now")})
	require.NoError(t, err)
	assert.Equal(t, "public now", back.Value, "Credential → Generic with a new value stores it as given")
}

// TestCredentialNeverBecomesVisible: a Credential cannot be made Generic
// without a new value (its decrypted value would then be listed), alone or
// with other changes, and nothing is changed by the refused update; a
// Generic value cannot be a token the keyring opens (the listing would
// decrypt a copied Credential ciphertext).
func TestCredentialNeverBecomesVisible(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	c, err := s.Create(ctx, "u1", variables.CreateInput{Name: "C", Value: "credential-plaintext"})
	require.NoError(t, err)
	for name, p := range map[string]variables.Patch{
		"type alone":         {Type: ptr(variables.Generic)},
		"type and name":      {Type: ptr(variables.Generic), Name: ptr("C2")},
		"type and fields":    {Type: ptr(variables.Generic), DefaultFields: &[]string{"f"}},
		"type in upper case": {Type: ptr(variables.Type("Generic"))},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Update(ctx, "u1", c.ID, p)
			require.ErrorIs(t, err, variables.ErrCredentialToGeneric)
			assert.NotContains(t, err.Error(), "credential-plaintext")
			got, err := s.Get(ctx, "u1", c.ID)
			require.NoError(t, err)
			assert.Equal(t, c, got, "a refused update changes nothing")
		})
	}
	list, err := s.List(ctx, "u1")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Empty(t, list[0].Value)

	// The token of the Credential, copied into a Generic value.
	_, err = s.Create(ctx, "u1", variables.CreateInput{Name: "COPY", Value: c.Value, Type: variables.Generic})
	require.ErrorIs(t, err, variables.ErrEncryptedGenericValue)
	g, err := s.Create(ctx, "u1", variables.CreateInput{Name: "G", Value: "plain", Type: variables.Generic})
	require.NoError(t, err)
	_, err = s.Update(ctx, "u1", g.ID, variables.Patch{Value: &c.Value})
	require.ErrorIs(t, err, variables.ErrEncryptedGenericValue)
	_, err = s.Update(ctx, "u1", c.ID, variables.Patch{Type: ptr(variables.Generic), Value: &c.Value})
	require.ErrorIs(t, err, variables.ErrEncryptedGenericValue)
	list, err = s.List(ctx, "u1")
	require.NoError(t, err)
	for _, v := range list {
		assert.NotEqual(t, "credential-plaintext", v.Value, v.Name)
	}
	// A token under another secret is only text to this Service.
	otherKeys, err := secrets.NewKeyring("another secret, another keyring, 1234567890")
	require.NoError(t, err)
	foreign, err := otherKeys.Encrypt("x")
	require.NoError(t, err)
	_, err = s.Create(ctx, "u1", variables.CreateInput{Name: "FOREIGN", Value: foreign, Type: variables.Generic})
	require.NoError(t, err)
}

// TestUpdateMarksUserOrigin: an edit makes an imported row the user's.
func TestUpdateMarksUserOrigin(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	_, err := s.ImportEnv(ctx, "u1", variables.EnvImportOptions{Names: []string{"X"}, LookupEnv: envMap{"X": "env"}.Lookup})
	require.NoError(t, err)
	list, err := s.List(ctx, "u1")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, variables.OriginEnv, list[0].Origin)
	u, err := s.Update(ctx, "u1", list[0].ID, variables.Patch{DefaultFields: &[]string{"f"}})
	require.NoError(t, err)
	assert.Equal(t, variables.OriginUser, u.Origin)
}

// TestDelete ports delete_variable_by_id.
func TestDelete(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	v, err := s.Create(ctx, "u1", variables.CreateInput{Name: "K", Value: "v"})
	require.NoError(t, err)
	assert.ErrorIs(t, s.Delete(ctx, "u2", v.ID), variables.ErrNotFound)
	require.NoError(t, s.Delete(ctx, "u1", v.ID))
	assert.ErrorIs(t, s.Delete(ctx, "u1", v.ID), variables.ErrNotFound)
	assert.ErrorIs(t, s.Delete(ctx, "u1", "junk"), variables.ErrNotFound)
	_, err = s.Get(ctx, "u1", v.ID)
	assert.ErrorIs(t, err, variables.ErrNotFound)
}

// conflictOnce fails the first Update with ErrConflict, as a concurrent
// writer would.
type conflictOnce struct {
	variables.Store
	fired bool
}

func (c *conflictOnce) Update(ctx context.Context, prev, next variables.Variable) error {
	if !c.fired {
		c.fired = true
		return variables.ErrConflict
	}
	return c.Store.Update(ctx, prev, next)
}

func TestUpdateRetriesOnConflict(t *testing.T) {
	ctx := context.Background()
	store := &conflictOnce{Store: variables.NewMemoryStore()}
	s := newService(t, store)
	v, err := s.Create(ctx, "u1", variables.CreateInput{Name: "K", Value: "v"})
	require.NoError(t, err)
	_, err = s.Update(ctx, "u1", v.ID, variables.Patch{Value: ptr("w")})
	require.NoError(t, err)
	assert.True(t, store.fired)
}

// failingStore fails every call, to check errors carry no values.
type failingStore struct{ variables.Store }

var errBroken = errors.New("store is down")

func (failingStore) Create(context.Context, variables.Variable) error { return errBroken }
func (failingStore) ListByUser(context.Context, string) ([]variables.Variable, error) {
	return nil, errBroken
}

// TestStoreFailureIsUnavailable: a store failure wraps ErrUnavailable and
// the cause, and carries no value; an outcome (not found) is not a failure.
func TestStoreFailureIsUnavailable(t *testing.T) {
	ctx := context.Background()
	svc := newService(t, failingStore{variables.NewMemoryStore()})
	_, err := svc.Create(ctx, "u1", variables.CreateInput{Name: "K", Value: "top secret"})
	assert.ErrorIs(t, err, variables.ErrUnavailable)
	assert.ErrorIs(t, err, errBroken, "the cause is kept for the log")
	assert.NotContains(t, err.Error(), "top secret")
	_, err = svc.List(ctx, "u1")
	assert.ErrorIs(t, err, variables.ErrUnavailable)
	assert.ErrorIs(t, err, errBroken)

	ok := newService(t, nil)
	_, err = ok.Get(ctx, "u1", "8f14e45f-ceea-467f-9ed4-6f1a2c3b4d5e")
	assert.ErrorIs(t, err, variables.ErrNotFound, "an outcome is not a failure")
	assert.NotErrorIs(t, err, variables.ErrUnavailable)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = ok.Value(cctx, "u1", "K")
	assert.ErrorIs(t, err, variables.ErrUnavailable, "a done context is a failure, not an outcome")
	assert.ErrorIs(t, err, context.Canceled)
}

// TestConcurrentPatchesDoNotLoseEachOther: two PATCHes of different fields
// of one variable, the second read before the first wrote, both take effect
// (as in Langflow, whose ORM writes only the fields a request sets). Without
// a check beyond value and origin, the second wrote the old name back.
func TestConcurrentPatchesDoNotLoseEachOther(t *testing.T) {
	ctx := context.Background()
	mem := variables.NewMemoryStore()
	other := newService(t, mem)
	v, err := other.Create(ctx, "u1", variables.CreateInput{Name: "K", Value: "v", Type: variables.Generic})
	require.NoError(t, err)
	racing := &beforeUpdate{Store: mem, hook: func() { // another request's rename
		_, err := other.Update(ctx, "u1", v.ID, variables.Patch{Name: ptr("RENAMED")})
		require.NoError(t, err)
	}}
	s := newService(t, racing)
	got, err := s.Update(ctx, "u1", v.ID, variables.Patch{DefaultFields: &[]string{"api_key"}})
	require.NoError(t, err)
	assert.Equal(t, "RENAMED", got.Name)
	stored, err := mem.Get(ctx, "u1", v.ID)
	require.NoError(t, err)
	assert.Equal(t, "RENAMED", stored.Name, "the concurrent rename is kept")
	assert.Equal(t, []string{"api_key"}, stored.DefaultFields)
}

// TestZeroValueService: issue 13 item 10. A Service or Resolver not made by
// its constructor returns ErrUninitialized instead of panicking.
func TestZeroValueService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range map[string]*variables.Service{"zero value": {}, "nil": nil} {
		require.NotPanics(t, func() {
			_, err := s.Create(ctx, "u", variables.CreateInput{Name: "N", Value: "v"})
			assert.ErrorIs(t, err, variables.ErrUninitialized, name)
			_, err = s.List(ctx, "u")
			assert.ErrorIs(t, err, variables.ErrUninitialized, name)
			_, err = s.Get(ctx, "u", "00000000-0000-0000-0000-000000000000")
			assert.ErrorIs(t, err, variables.ErrUninitialized, name)
			_, err = s.Value(ctx, "u", "N")
			assert.ErrorIs(t, err, variables.ErrUninitialized, name)
			_, err = s.Update(ctx, "u", "00000000-0000-0000-0000-000000000000", variables.Patch{})
			assert.ErrorIs(t, err, variables.ErrUninitialized, name)
			assert.ErrorIs(t, s.Delete(ctx, "u", "00000000-0000-0000-0000-000000000000"), variables.ErrUninitialized, name)
			_, err = s.Reveal(variables.Variable{})
			assert.ErrorIs(t, err, variables.ErrUninitialized, name)
			_, err = s.ImportEnv(ctx, "u", variables.EnvImportOptions{})
			assert.ErrorIs(t, err, variables.ErrUninitialized, name)
			_, err = (&variables.Resolver{}).Resolve(ctx, "u", nil, nil)
			assert.ErrorIs(t, err, variables.ErrUninitialized, name)
			_, err = (*variables.Resolver)(nil).Resolve(ctx, "u", nil, nil)
			assert.ErrorIs(t, err, variables.ErrUninitialized, name)
			_ = s.Store()
		})
	}
}

// TestUpdateValidatesDefaultFields: issue 13 item 8, on the update path:
// nothing is stored.
func TestUpdateValidatesDefaultFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newService(t, nil)
	v, err := s.Create(ctx, "u1", variables.CreateInput{Name: "K", Value: "v", DefaultFields: []string{"api_key"}})
	require.NoError(t, err)
	for _, bad := range [][]string{{"\x00"}, {""}, {"a\u202e"}, make([]string, variables.MaxDefaultFields+1)} {
		_, err := s.Update(ctx, "u1", v.ID, variables.Patch{DefaultFields: &bad})
		require.ErrorIs(t, err, variables.ErrInvalidDefaultFields)
	}
	_, err = s.Update(ctx, "u1", v.ID, variables.Patch{Name: ptr("K\u200b")})
	require.ErrorIs(t, err, variables.ErrInvalidName)
	got, err := s.Get(ctx, "u1", v.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"api_key"}, got.DefaultFields, "nothing stored")
	assert.Equal(t, "K", got.Name)
}
