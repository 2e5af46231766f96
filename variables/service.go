package variables

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/internal/changefeed"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/internal/isnil"
	"github.com/keyflow-dev/keyflow/observe"
	"github.com/keyflow-dev/keyflow/secrets"
)

// ServiceConfig configures a Service. Keyring is required.
type ServiceConfig struct {
	Store   Store            // nil: a new MemoryStore
	Keyring *secrets.Keyring // required: encrypts and decrypts Credential values
	Now     func() time.Time // nil: time.Now
	// Logger receives debug lines naming variables (never values) and the
	// per-variable failures of ImportEnv. nil: slog.Default().
	Logger *slog.Logger
	// Hooks, when set, is told every store operation the Service makes
	// (observe.Hooks.VariableAccessed: the method, its error, its duration;
	// never a name or a value) and opens a span around each store read.
	// nil: nothing is measured.
	Hooks observe.Hooks

	// Changes, when set, turns on a cache of each user's variables for the
	// Resolver (no store read on a run whose user is cached), kept right by
	// this feed of the users whose variables changed in the store: a change
	// made by another process (or directly on the Store) is seen within
	// ChangesMaxLag, a change made through this Service at once. The feed
	// is polled every ChangesPollInterval while runs are resolved, at once
	// on a ChangesNotifier's signal, and not at all while nothing is
	// resolved (the first runs after a pause read the store). When the feed
	// fails for longer than ChangesMaxLag the cache is dropped and runs read
	// the store (failing with ErrUnavailable while it is down). nil: no
	// cache; every run reads the store once. Close the Service to stop the
	// poller.
	Changes ChangeFeed
	// ChangesNotifier, with Changes, pushes word of changes (package
	// apikey/sqlstore/pgnotify on PostgreSQL), so that they are seen in
	// milliseconds rather than within ChangesPollInterval.
	ChangesNotifier ChangeNotifier
	// ChangesMaxLag bounds how late a change made elsewhere is seen. 0: 1 s.
	ChangesMaxLag time.Duration
	// ChangesPollInterval is how often Changes is polled while runs are
	// resolved; shorter than ChangesMaxLag. 0: a fifth of ChangesMaxLag.
	ChangesPollInterval time.Duration
	// CacheSize bounds the number of users cached, with Changes. 0: 10 000.
	CacheSize int
}

// Service applies Langflow's rules to a Store: validation in Langflow's order
// with Langflow's messages, encryption of Credential values, hidden internal
// variables, and the environment import. It is safe for concurrent use.
//
// Every method that reads or writes the store returns, for a store failure
// (including a done ctx), an error that wraps both ErrUnavailable and the
// cause; ErrNotFound, ErrDuplicate and the validation errors are outcomes,
// never wrapped in ErrUnavailable. It logs only through ServiceConfig.Logger:
// at debug level a Generic value that does not decrypt, at warn level each
// failure of ImportEnv, naming variables, never values.
type Service struct {
	store   Store // the caller's store behind unavailableStore
	inner   Store
	keyring *secrets.Keyring
	now     func() time.Time
	log     *slog.Logger
	cache   *varCache // nil: no ServiceConfig.Changes
	unsub   func()    // ends the ChangesNotifier subscription; nil: none
}

// errNoKeyring is returned by NewService without a Keyring.
var errNoKeyring = errors.New("variables: ServiceConfig.Keyring is required")

// maxUpdateAttempts bounds the optimistic-concurrency retries of Update and
// ImportEnv when a row changes between read and write.
const maxUpdateAttempts = 5

// NewService returns a Service. It fails without a Keyring, with a Keyring
// not made by secrets.NewKeyring or secrets.Load (a zero secrets.Keyring
// would fail every Credential), and when Store holds a nil pointer (a typed
// nil; a nil Store means a new MemoryStore).
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Keyring == nil {
		return nil, errNoKeyring
	}
	if cfg.Keyring.Derivation() == "" { // set by NewKeyring, empty on a zero Keyring
		return nil, errors.New("variables: ServiceConfig.Keyring was not made by secrets.NewKeyring or secrets.Load")
	}
	if cfg.Store != nil && isnil.Value(cfg.Store) {
		return nil, errors.New("variables: ServiceConfig.Store holds a nil pointer")
	}
	if cfg.Changes != nil && isnil.Value(cfg.Changes) {
		return nil, errors.New("variables: ServiceConfig.Changes holds a nil pointer")
	}
	if cfg.ChangesNotifier != nil && isnil.Value(cfg.ChangesNotifier) {
		return nil, errors.New("variables: ServiceConfig.ChangesNotifier holds a nil pointer")
	}
	maxLag := cmp.Or(cfg.ChangesMaxLag, DefaultChangesMaxLag)
	poll := cmp.Or(cfg.ChangesPollInterval, maxLag/5)
	if cfg.Changes != nil && (maxLag < 0 || poll <= 0 || poll >= maxLag) {
		return nil, errors.New("variables: ServiceConfig.ChangesPollInterval must be positive and shorter than ChangesMaxLag")
	}
	s := &Service{inner: cfg.Store, keyring: cfg.Keyring, now: cfg.Now, log: cfg.Logger}
	if s.inner == nil {
		s.inner = NewMemoryStore()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var inner Store = s.inner
	if cfg.Hooks != nil {
		inner = observedStore{inner, cfg.Hooks}
	}
	s.store = unavailableStore{inner}
	if cfg.Changes != nil && cfg.CacheSize >= 0 {
		s.cache = newVarCache(cmp.Or(cfg.CacheSize, DefaultCacheSize))
		s.store = unavailableStore{forgetfulStore{inner, s.cache}}
		var notes <-chan struct{}
		if cfg.ChangesNotifier != nil {
			notes, s.unsub = cfg.ChangesNotifier.Subscribe()
		}
		s.cache.feed = changefeed.Start(changefeed.Config[string]{
			Feed:       cfg.Changes.Changes,
			Lost:       ErrChangesLost,
			Notes:      notes,
			Every:      poll,
			MaxLag:     maxLag,
			Invalidate: s.cache.forgetAll,
			Clear:      s.cache.clear,
			Log:        s.log,
			What:       "variables",
			Cache:      "variable cache",
			Reads:      "runs read the store",
		})
	}
	return s, nil
}

// Close stops the cache's change-feed poller (ServiceConfig.Changes) and
// drops the cache; without Changes it does nothing. The Service keeps
// working afterwards, reading the store on every run. Close may be called
// more than once.
func (s *Service) Close() error {
	if s == nil || s.cache == nil {
		return nil
	}
	s.cache.feed.Close() // nothing cached is trusted any more
	s.cache.clear()
	if s.unsub != nil {
		s.unsub()
	}
	return nil
}

// Store returns the Store the Service works on. Calls made on it directly
// bypass the Service's rules, and their failures are not wrapped in
// ErrUnavailable.
func (s *Service) Store() Store {
	if s == nil {
		return nil
	}
	return s.inner
}

// timestamp is now in UTC, truncated to microseconds so that it survives
// every SQL store unchanged.
func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// CreateInput is a new variable. Type "" means Credential (Langflow's API
// default).
type CreateInput struct {
	Name, Value   string
	Type          Type
	DefaultFields []string
}

// Patch changes some fields of a variable; nil fields are left as they are.
// A non-nil Value of "" is stored (Langflow counts an empty string as a value).
type Patch struct {
	Name, Value   *string
	Type          *Type
	DefaultFields *[]string
}

// Create stores a new variable for the user, checking in Langflow's order
// (docs/langflow-compatibility.md#variable-rules-and-messages): ErrEmptyNameAndValue, ErrEmptyName, ErrEmptyValue, then keyflow's
// ErrInvalidName, ErrInvalidDefaultFields, ErrInvalidType and ErrInvalidValue,
// then ErrDuplicate.
// A Credential value is encrypted; a Generic value is stored as given. The
// returned Variable holds the stored value (a token for Credential) with
// Origin OriginUser and a zero UpdatedAt.
//
// A Generic value that is a token the keyring opens is refused
// (ErrEncryptedGenericValue): listings would decrypt it.
func (s *Service) Create(ctx context.Context, userID string, in CreateInput) (Variable, error) {
	if err := s.ready(); err != nil {
		return Variable{}, err
	}
	return s.create(ctx, userID, in, OriginUser)
}

func (s *Service) create(ctx context.Context, userID string, in CreateInput, origin Origin) (Variable, error) {
	switch {
	case in.Name == "" && in.Value == "":
		return Variable{}, ErrEmptyNameAndValue
	case in.Name == "":
		return Variable{}, ErrEmptyName
	case in.Value == "":
		return Variable{}, ErrEmptyValue
	}
	if err := ValidateName(in.Name); err != nil {
		return Variable{}, err
	}
	if err := ValidateDefaultFields(in.DefaultFields); err != nil {
		return Variable{}, err
	}
	typ := in.Type
	if typ == "" {
		typ = Credential
	}
	if !typ.Valid() {
		return Variable{}, ErrInvalidType
	}
	stored, err := s.seal(typ, in.Value)
	if err != nil {
		return Variable{}, err
	}
	v := Variable{
		ID:            ids.New(),
		UserID:        userID,
		Name:          in.Name,
		Value:         stored,
		Type:          typ,
		DefaultFields: slices.Clone(in.DefaultFields),
		CreatedAt:     s.timestamp(),
		Origin:        origin,
	}
	if v.DefaultFields == nil {
		v.DefaultFields = []string{}
	}
	if err := s.store.Create(ctx, v); err != nil {
		if errors.Is(err, ErrDuplicate) {
			return Variable{}, ErrDuplicate
		}
		return Variable{}, fmt.Errorf("variables: create %q: %w", in.Name, err)
	}
	return v, nil
}

// seal turns a plaintext into the stored form for typ. A Generic value that
// is a token the keyring opens is refused (ErrEncryptedGenericValue): open
// would decrypt it for every listing.
func (s *Service) seal(typ Type, plaintext string) (string, error) {
	if typ != Credential {
		if err := validateStoredText(plaintext); err != nil {
			return "", err
		}
		if secrets.IsEncrypted(plaintext) && s.opens(plaintext) == nil {
			return "", ErrEncryptedGenericValue
		}
		return plaintext, nil
	}
	token, err := s.keyring.Encrypt(plaintext)
	if err != nil {
		return "", fmt.Errorf("variables: encrypt: %w", err)
	}
	return token, nil
}

// open returns the plaintext of a stored value. Credential tokens must
// decrypt (the error wraps secrets.ErrInvalidToken otherwise); a Credential
// value that is not a token is legacy plaintext and returned as is. Generic
// values are plaintext unless they are tokens written by old Langflow, which
// are decrypted when they open and returned as they are when they do not
// (Langflow's "Assuming plaintext").
func (s *Service) open(v *Variable) (string, error) {
	if !secrets.IsEncrypted(v.Value) {
		return v.Value, nil
	}
	plain, err := s.keyring.Decrypt(v.Value)
	if err == nil {
		return plain, nil
	}
	if v.Type != Credential {
		s.log.Debug("variables: Generic value does not decrypt; assuming plaintext", "variable", v.Name)
		return v.Value, nil
	}
	return "", fmt.Errorf("variables: decrypt variable %q: %w", v.Name, err)
}

// Reveal returns the plaintext of a variable as stored (as Get returns it):
// see Value for how legacy values are read. The error wraps
// secrets.ErrInvalidToken when a Credential does not decrypt.
func (s *Service) Reveal(v Variable) (string, error) {
	if err := s.ready(); err != nil {
		return "", err
	}
	return s.open(&v)
}

// ErrUninitialized is returned by every method of a Service (or Resolver)
// that was not made by NewService (NewResolver): a nil pointer or a zero
// value, instead of a panic.
var ErrUninitialized = errors.New("variables: Service or Resolver not created with NewService or NewResolver")

// ready returns ErrUninitialized unless s was made by NewService.
func (s *Service) ready() error {
	if s == nil || s.store == nil {
		return ErrUninitialized
	}
	return nil
}

// List returns the user's variables for display, oldest first: Credential
// values are "" (the API shows null), Generic values are plaintext (legacy
// encrypted ones decrypted when they open), and names wrapped in "__" are
// left out.
func (s *Service) List(ctx context.Context, userID string) ([]Variable, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	all, err := s.store.ListByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("variables: list: %w", err)
	}
	out := all[:0]
	for _, v := range all {
		if v.Hidden() {
			continue
		}
		if v.Type == Credential {
			v.Value = ""
		} else if v.Value, err = s.open(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// IDs are UUIDs in either case; the Service looks them up in lower case, the
// form it creates them in.

// Get returns the user's variable with this ID as stored (Value is a token
// for Credential), or ErrNotFound.
func (s *Service) Get(ctx context.Context, userID, id string) (Variable, error) {
	if err := s.ready(); err != nil {
		return Variable{}, err
	}
	if !ids.Valid(id) {
		return Variable{}, ErrNotFound
	}
	return s.store.Get(ctx, userID, strings.ToLower(id))
}

// Value returns the decrypted value of the user's variable with this name.
// ErrNotFound if there is none or its value is empty (as Langflow); an error
// wrapping secrets.ErrInvalidToken if a Credential does not decrypt with the
// keyring.
func (s *Service) Value(ctx context.Context, userID, name string) (string, error) {
	if err := s.ready(); err != nil {
		return "", err
	}
	v, err := s.store.GetByName(ctx, userID, name)
	if err != nil {
		return "", err
	}
	if v.Value == "" {
		return "", ErrNotFound
	}
	return s.open(&v)
}

// Update applies p to the user's variable with this ID and returns it as
// stored. ErrNotFound if there is none (or id is not a UUID). A new Value is
// encrypted when the resulting type is Credential. Changing the type without
// a new value: Generic → Credential encrypts the stored value (Langflow
// leaves the plaintext); Credential → Generic is refused with
// ErrCredentialToGeneric, since Generic values are shown and a decrypted
// Credential must never be (Langflow decrypts it). A new
// Name is checked with ValidateName and must be free (ErrDuplicate); a new
// Type must be valid (ErrInvalidType). The variable becomes OriginUser, so the
// environment import never overwrites it again. A row changed by someone else
// between read and write is read again and the patch reapplied; after
// repeated changes the error wraps ErrConflict.
func (s *Service) Update(ctx context.Context, userID, id string, p Patch) (Variable, error) {
	if err := s.ready(); err != nil {
		return Variable{}, err
	}
	if !ids.Valid(id) {
		return Variable{}, ErrNotFound
	}
	id = strings.ToLower(id)
	if p.Name != nil {
		if err := ValidateName(*p.Name); err != nil {
			return Variable{}, err
		}
	}
	if p.DefaultFields != nil {
		if err := ValidateDefaultFields(*p.DefaultFields); err != nil {
			return Variable{}, err
		}
	}
	if p.Type != nil && !p.Type.Valid() {
		return Variable{}, ErrInvalidType
	}
	for attempt := 0; ; attempt++ {
		cur, err := s.store.Get(ctx, userID, id)
		if err != nil {
			return Variable{}, err
		}
		next, err := s.apply(cur, p)
		if err != nil {
			return Variable{}, err
		}
		err = s.store.Update(ctx, cur, next)
		switch {
		case err == nil:
			return next, nil
		case errors.Is(err, ErrDuplicate):
			return Variable{}, ErrDuplicate
		case errors.Is(err, ErrConflict) && attempt+1 < maxUpdateAttempts:
			continue
		case errors.Is(err, ErrNotFound):
			return Variable{}, err
		default:
			return Variable{}, fmt.Errorf("variables: update %q: %w", cur.Name, err)
		}
	}
}

func (s *Service) apply(cur Variable, p Patch) (Variable, error) {
	next := cur
	next.DefaultFields = slices.Clone(cur.DefaultFields)
	if p.Name != nil {
		next.Name = *p.Name
	}
	if p.Type != nil {
		next.Type = *p.Type
	}
	if p.DefaultFields != nil {
		next.DefaultFields = slices.Clone(*p.DefaultFields)
		if next.DefaultFields == nil {
			next.DefaultFields = []string{}
		}
	}
	switch {
	case p.Value != nil:
		v, err := s.seal(next.Type, *p.Value)
		if err != nil {
			return Variable{}, err
		}
		next.Value = v
	case next.Type == Credential && cur.Type != Credential:
		// Generic → Credential: encrypt the existing value (a legacy token
		// that opens is already encrypted).
		if !secrets.IsEncrypted(cur.Value) || s.opens(cur.Value) != nil {
			v, err := s.seal(Credential, cur.Value)
			if err != nil {
				return Variable{}, err
			}
			next.Value = v
		}
	case next.Type != Credential && cur.Type == Credential:
		// Credential → Generic would store, and then list, the decrypted
		// value: only a new value may come with the change.
		return Variable{}, ErrCredentialToGeneric
	}
	next.UpdatedAt = s.timestamp()
	next.Origin = OriginUser
	return next, nil
}

func (s *Service) opens(token string) error {
	_, err := s.keyring.Decrypt(token)
	return err
}

// Delete removes the user's variable with this ID; ErrNotFound if there is
// none (or id is not a UUID).
func (s *Service) Delete(ctx context.Context, userID, id string) error {
	if err := s.ready(); err != nil {
		return err
	}
	if !ids.Valid(id) {
		return ErrNotFound
	}
	return s.store.Delete(ctx, userID, strings.ToLower(id))
}
