package kubestore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/variables"
)

// The names keyflow gives to what it keeps on a Secret besides the values.
const (
	// CredentialPrefix starts the data key of a Credential variable:
	// "Credential_OPENAI_API_KEY" holds the Credential OPENAI_API_KEY. A
	// Generic variable's data key is its name. (Langflow's layout.)
	CredentialPrefix = string(variables.Credential) + "_"
	// MetadataAnnotation holds, as a JSON object keyed by data key, what
	// Langflow's layout has no place for: each variable's ID,
	// default_fields, timestamps and origin (see the package doc).
	MetadataAnnotation = "keyflow.dev/variables"
	// UserAnnotation holds the user ID a Secret belongs to, so that two user
	// IDs that map to one Secret name are told apart instead of sharing
	// variables.
	UserAnnotation = "keyflow.dev/user-id"
	// Label marks the Secrets keyflow has written (value "true"), which
	// ListCiphertexts and SwapCiphertext search.
	Label = "keyflow.dev/variables"
)

// LangflowSecretName is the Secret name Langflow gives a user's variables
// (encode_user_id in Langflow's services/variable/kubernetes_secrets.py;
// docs/langflow-compatibility.md#variables-in-kubernetes-secrets): for a
// UUID, "uuid-" and the UUID in lower case; for any other ID, the ID in lower
// case with "@" written "-at-" and "." written "-dot-" (when either occurs),
// "+" written "-", "/" written "_", trailing "=" removed, "a-" put in front
// unless it starts with a letter or digit, cut to 253 characters, and
// trailing characters other than letters and digits removed. The result must
// be a valid Secret name (a DNS subdomain: lower-case letters, digits, '-'
// and '.'), else the error says why; Langflow would pass such a name to the
// API server, which refuses it.
func LangflowSecretName(userID string) (string, error) {
	if ids.Valid(userID) {
		return "uuid-" + strings.ToLower(userID), nil
	}
	name := strings.ToLower(userID)
	if strings.ContainsAny(name, "@.") {
		name = strings.NewReplacer("@", "-at-", ".", "-dot-").Replace(name)
	}
	name = strings.NewReplacer("+", "-", "/", "_").Replace(name)
	name = strings.TrimRight(name, "=")
	if name == "" {
		return "", fmt.Errorf("kubestore: user ID %q gives an empty Secret name", userID)
	}
	if first := []rune(name)[0]; !isAlnum(first) {
		name = "a-" + name
	}
	if r := []rune(name); len(r) > validation.DNS1123SubdomainMaxLength {
		name = string(r[:validation.DNS1123SubdomainMaxLength])
	}
	name = strings.TrimRightFunc(name, func(r rune) bool { return !isAlnum(r) })
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return "", fmt.Errorf("kubestore: user ID %q gives Secret name %q, which Kubernetes refuses: %s",
			userID, name, strings.Join(errs, "; "))
	}
	return name, nil
}

// isAlnum is Python's str.isalnum for one character, which Langflow's
// encode_user_id uses.
func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) }

// dataKey is the Secret data key of a variable: CredentialPrefix and the name
// for a Credential, the name for a Generic variable. Names a data key cannot
// hold are refused with an error matching variables.ErrInvalidName, as is a
// Generic name that starts with CredentialPrefix (Langflow would read it as a
// Credential).
func dataKey(name string, typ variables.Type) (string, error) {
	var key string
	switch typ {
	case variables.Credential:
		key = CredentialPrefix + name
	case variables.Generic:
		if strings.HasPrefix(name, CredentialPrefix) {
			return "", variables.InvalidNameError("A Generic variable's name cannot start with " +
				CredentialPrefix + " in a Kubernetes Secret: Langflow reads such a key as a Credential")
		}
		key = name
	default:
		return "", variables.ErrInvalidType
	}
	if name == "" || len(validation.IsConfigMapKey(key)) > 0 {
		return "", variables.InvalidNameError(fmt.Sprintf("Variable name must hold only ASCII letters, "+
			"digits, '-', '_' and '.', not start with \"..\", and be at most %d bytes (%d for a Credential) "+
			"to be kept in a Kubernetes Secret", validation.DNS1123SubdomainMaxLength,
			validation.DNS1123SubdomainMaxLength-len(CredentialPrefix)))
	}
	return key, nil
}

// parseKey is the inverse of dataKey, as Langflow reads a key: a key that
// starts with CredentialPrefix is a Credential, any other a Generic
// variable. ok is false for CredentialPrefix alone (no name).
func parseKey(key string) (name string, typ variables.Type, ok bool) {
	if rest, found := strings.CutPrefix(key, CredentialPrefix); found {
		return rest, variables.Credential, rest != ""
	}
	return key, variables.Generic, key != ""
}

// meta is what MetadataAnnotation keeps for one variable.
type meta struct {
	ID            string           `json:"id"`
	DefaultFields []string         `json:"default_fields"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     *time.Time       `json:"updated_at,omitempty"`
	Origin        variables.Origin `json:"origin"`
}

func metaOf(v variables.Variable) meta {
	m := meta{ID: v.ID, DefaultFields: v.DefaultFields, CreatedAt: v.CreatedAt.UTC(), Origin: v.Origin}
	if m.DefaultFields == nil {
		m.DefaultFields = []string{}
	}
	if !v.UpdatedAt.IsZero() {
		u := v.UpdatedAt.UTC()
		m.UpdatedAt = &u
	}
	return m
}

// synthesized is the metadata of a variable that has none: one written by
// Langflow. Its ID is derived from where it lives, so it stays the same from
// one read to the next until keyflow writes the Secret and records it; it
// was created with the Secret, never updated, by a user.
func synthesized(namespace, secret, key string, created time.Time) meta {
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:keyflow:kubestore:"+namespace+"/"+secret+"/"+key))
	return meta{ID: id.String(), DefaultFields: []string{}, CreatedAt: created.UTC(), Origin: variables.OriginUser}
}

// decodeMeta reads MetadataAnnotation; an absent or unreadable annotation,
// or an entry without an ID (edited by hand), reads as no metadata, so the
// variables get synthesized metadata instead of becoming unreadable.
func decodeMeta(s *corev1.Secret) map[string]meta {
	out := map[string]meta{}
	if raw, ok := s.Annotations[MetadataAnnotation]; ok {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			return map[string]meta{}
		}
	}
	for k, m := range out {
		if m.ID == "" {
			delete(out, k)
		}
	}
	return out
}
