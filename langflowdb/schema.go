package langflowdb

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// KeyStorage is the form in which a Langflow version keeps keys in
// apikey.api_key, and so the form in which keys created through a KeyStore
// are written.
type KeyStorage int

// The key storage forms of Langflow's generations.
const (
	// StorageAuto lets Open choose: StorageTokenAndHash when the table has
	// api_key_hash; otherwise StorageToken when a row already holds a Fernet
	// token (a 1.8 database); otherwise StoragePlaintext, the one form both
	// 1.7 and 1.8 accept.
	StorageAuto KeyStorage = iota
	// StoragePlaintext writes the key in clear (Langflow ≤ 1.7 reads only
	// this). Anyone who can read the table can use the key.
	StoragePlaintext
	// StorageToken writes a Fernet token of the key (Langflow 1.8).
	StorageToken
	// StorageTokenAndHash writes a token and api_key_hash (later versions).
	StorageTokenAndHash
)

// String names the storage form.
func (k KeyStorage) String() string {
	switch k {
	case StoragePlaintext:
		return "plaintext (Langflow ≤ 1.7)"
	case StorageToken:
		return "Fernet token (Langflow 1.8)"
	case StorageTokenAndHash:
		return "Fernet token and api_key_hash"
	}
	return "auto"
}

// ShortSecret chooses the Fernet key a secret shorter than 32 characters
// encrypts with. Langflow changed it in 1.10.1: before, the secret seeded
// Python's PRNG; since, it is hashed with SHA-256. Langflow 1.10.0 and
// earlier (every 1.8 generation among them) open only the first kind,
// 1.10.1 to 1.11.2 only the second, 1.11.3 and later both
// (docs/langflow-compatibility.md#writing-langflow-rows). A secret of 32
// characters or more (Langflow generates 43) has one key for every version,
// and ShortSecret does not matter.
type ShortSecret int

// The choices of ShortSecret.
const (
	// ShortSecretDetect (the zero value): as the newest Fernet token in the
	// apikey and variable tables that the secret opens, so keyflow writes
	// what the Langflow writing beside it writes; the SHA-256 key when there
	// is none.
	ShortSecretDetect ShortSecret = iota
	// ShortSecretCurrent: the SHA-256 key (Langflow ≥ 1.10.1).
	ShortSecretCurrent
	// ShortSecretLegacy: the PRNG key (Langflow ≤ 1.10.0).
	ShortSecretLegacy
)

// Config configure Open.
type Config struct {
	// Dialect of the database; required.
	Dialect sqldialect.Dialect
	// Keyring holds Langflow's secret (LANGFLOW_SECRET_KEY or its
	// config-dir file), and any previous ones. It opens token rows and
	// encrypts new ones; nil: token rows do not verify and only
	// StoragePlaintext can be written.
	Keyring *secrets.Keyring
	// KeyStorage forces how new keys are written; StorageAuto (the zero
	// value) detects it.
	KeyStorage KeyStorage
	// ShortSecret chooses the encryption key of a secret shorter than 32
	// characters; ShortSecretDetect (the zero value) detects it. Use
	// DB.Keyring to encrypt values for this database.
	ShortSecret ShortSecret
	// MaxCacheAge is how long a Manager may serve a cached verification
	// result (apikey.CacheBound), and so how late a key deleted or
	// deactivated in Langflow may still be accepted (plus the Manager's
	// clock resolution, about a millisecond). 0: 900 ms, which keeps the
	// revocation bound under 1 s.
	MaxCacheAge time.Duration
	// LegacyRescanInterval is the shortest time between two reads of the
	// hashless rows when a key is not in the index of their hashes, so
	// that floods of unknown keys cost at most one table read per interval.
	// 0: 200 ms.
	LegacyRescanInterval time.Duration
	// Logger receives data integrity violations (rows sharing a hash) and
	// failed hash backfills. nil: slog.Default(). Keys are never logged.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxCacheAge          = 900 * time.Millisecond
	DefaultLegacyRescanInterval = 200 * time.Millisecond
)

// Schema is what Open found in the database.
type Schema struct {
	// HasAPIKeyHash: apikey.api_key_hash exists.
	HasAPIKeyHash bool
	// HasExpiresAt: apikey.expires_at exists (the newest Langflow).
	HasExpiresAt bool
	// HasVariables: the variable table exists.
	HasVariables bool
	// HasCategory: variable.category exists (newer Langflow); new
	// variables get Langflow's default category, Global.
	HasCategory bool
	// KeyStorage is how new keys are written.
	KeyStorage KeyStorage
	// Encryption is the key derivation new Fernet tokens are made with
	// (see ShortSecret); "" without a Keyring.
	Encryption secrets.Derivation
}

// Generation describes the schema in the terms of Langflow's versions.
func (s Schema) Generation() string {
	switch {
	case s.HasExpiresAt:
		return "keys as token and hash, with expiry (newest Langflow)"
	case s.HasAPIKeyHash:
		return "keys as token and hash (Langflow 1.8 and later)"
	case s.KeyStorage == StorageToken:
		return "keys as Fernet tokens (Langflow 1.8)"
	}
	return "keys in clear (Langflow ≤ 1.7)"
}

// ErrNotLangflow is returned (wrapped) by Open when the database has no
// Langflow apikey table.
var ErrNotLangflow = errors.New("langflowdb: not a Langflow database (no apikey table with an api_key column)")

// DB is an open Langflow database: the source of a KeyStore, a
// VariableStore and the list of Langflow's users, made by Open (the zero
// value is not usable). It is safe for concurrent use.
type DB struct {
	db      *sql.DB
	dialect sqldialect.Dialect
	schema  Schema
	keyring *secrets.Keyring
	log     *slog.Logger
	opts    Config
}

// Open reads the schema of the Langflow database db and returns a DB on it.
// It writes nothing. It does not close db.
func Open(ctx context.Context, db *sql.DB, opts Config) (*DB, error) {
	if db == nil {
		return nil, errors.New("langflowdb: db is nil")
	}
	if !opts.Dialect.Valid() {
		return nil, fmt.Errorf("langflowdb: Config.Dialect must be sqldialect.SQLite or sqldialect.Postgres, not %q", opts.Dialect)
	}
	if opts.Keyring != nil && opts.Keyring.Derivation() == "" { // a zero Keyring opens nothing
		return nil, errors.New("langflowdb: Config.Keyring was not made by secrets.NewKeyring or secrets.Load")
	}
	if opts.MaxCacheAge < 0 || opts.LegacyRescanInterval < 0 {
		return nil, errors.New("langflowdb: Config.MaxCacheAge and LegacyRescanInterval must not be negative")
	}
	if opts.MaxCacheAge == 0 {
		opts.MaxCacheAge = DefaultMaxCacheAge
	}
	if opts.LegacyRescanInterval == 0 {
		opts.LegacyRescanInterval = DefaultLegacyRescanInterval
	}
	d := &DB{db: db, dialect: opts.Dialect, keyring: opts.Keyring, log: opts.Logger, opts: opts}
	if d.log == nil {
		d.log = slog.Default()
	}
	keyCols, err := d.columns(ctx, "apikey")
	if err != nil {
		return nil, err
	}
	if !keyCols["api_key"] || !keyCols["user_id"] {
		return nil, ErrNotLangflow
	}
	varCols, err := d.columns(ctx, "variable")
	if err != nil {
		return nil, err
	}
	d.schema = Schema{
		HasAPIKeyHash: keyCols["api_key_hash"],
		HasExpiresAt:  keyCols["expires_at"],
		HasVariables:  varCols["value"] && varCols["user_id"],
		HasCategory:   varCols["category"],
		KeyStorage:    opts.KeyStorage,
	}
	if d.schema.KeyStorage == StorageAuto {
		if d.schema.KeyStorage, err = d.detectStorage(ctx); err != nil {
			return nil, err
		}
	}
	if d.schema.KeyStorage == StorageTokenAndHash && !d.schema.HasAPIKeyHash {
		return nil, errors.New("langflowdb: StorageTokenAndHash needs the api_key_hash column, which this database lacks")
	}
	if d.schema.KeyStorage != StoragePlaintext && d.keyring == nil {
		return nil, errors.New("langflowdb: Config.Keyring (Langflow's secret) is required to write keys as Fernet tokens")
	}
	if d.keyring != nil {
		if d.keyring, err = d.encryptionKeyring(ctx, opts.ShortSecret); err != nil {
			return nil, err
		}
		d.schema.Encryption = d.keyring.Derivation()
	}
	return d, nil
}

// Schema returns what Open found.
func (d *DB) Schema() Schema { return d.schema }

// Keyring returns Config.Keyring as this database needs it: it decrypts
// what Config.Keyring decrypts and encrypts with the key ShortSecret chose
// (Schema.Encryption). A variables.Service on the VariableStore must encrypt
// with it, so that Langflow opens its Credential values. nil without a
// Config.Keyring.
func (d *DB) Keyring() *secrets.Keyring { return d.keyring }

// encryptionKeyring applies ShortSecret to Config.Keyring.
func (d *DB) encryptionKeyring(ctx context.Context, mode ShortSecret) (*secrets.Keyring, error) {
	k := d.keyring
	if k.Derivation() != secrets.DerivationSHA256 { // a long secret: one key
		return k, nil
	}
	want := secrets.DerivationSHA256
	switch mode {
	case ShortSecretLegacy:
		want = secrets.DerivationLegacyMT19937
	case ShortSecretDetect:
		found, err := d.newestTokenDerivation(ctx)
		if err != nil {
			return nil, err
		}
		if found != "" {
			want = found
		}
	case ShortSecretCurrent:
	default:
		return nil, fmt.Errorf("langflowdb: unknown Config.ShortSecret %d", mode)
	}
	return k.WithEncryption(want)
}

// detectTokens is how many of the newest tokens of each table
// newestTokenDerivation reads.
const detectTokens = 20

// newestTokenDerivation returns the derivation of the primary secret's key
// that opens the newest Fernet token of the apikey and variable tables
// (by created_at; for variables, updated_at first, since an update
// re-encrypts), or "" when the secret opens none of them.
func (d *DB) newestTokenDerivation(ctx context.Context) (secrets.Derivation, error) {
	type tok struct {
		at    time.Time
		token string
	}
	var toks []tok
	read := func(query string) error {
		rows, err := d.db.QueryContext(ctx, query)
		if err != nil {
			return fmt.Errorf("langflowdb: detect the key derivation: %w", err)
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var t tok
			var at sqlutil.NullTime
			if err := rows.Scan(&t.token, &at); err != nil {
				return fmt.Errorf("langflowdb: detect the key derivation: %w", err)
			}
			t.at = at.T
			toks = append(toks, t)
		}
		return rows.Err()
	}
	limit := fmt.Sprintf(" LIMIT %d", detectTokens)
	if err := read("SELECT api_key, created_at FROM apikey WHERE " + tokenTest("api_key") + " ORDER BY created_at DESC" + limit); err != nil {
		return "", err
	}
	if d.schema.HasVariables {
		if err := read("SELECT value, COALESCE(updated_at, created_at) AS at FROM variable WHERE " + tokenTest("value") + " ORDER BY at DESC" + limit); err != nil {
			return "", err
		}
	}
	slices.SortStableFunc(toks, func(a, b tok) int { return b.at.Compare(a.at) })
	for _, t := range toks {
		if der := d.keyring.OpenedBy(t.token); der != "" {
			return der, nil
		}
	}
	return "", nil
}

// columns returns the column names of table (empty when it does not exist).
func (d *DB) columns(ctx context.Context, table string) (map[string]bool, error) {
	q := "SELECT name FROM pragma_table_info(?)"
	if d.dialect == sqldialect.Postgres {
		q = "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1"
	}
	rows, err := d.db.QueryContext(ctx, q, table)
	if err != nil {
		return nil, fmt.Errorf("langflowdb: read the columns of %s: %w", table, err)
	}
	defer func() { _ = rows.Close() }()
	cols := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("langflowdb: read the columns of %s: %w", table, err)
		}
		cols[strings.ToLower(name)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("langflowdb: read the columns of %s: %w", table, err)
	}
	return cols, nil
}

func (d *DB) detectStorage(ctx context.Context) (KeyStorage, error) {
	if d.schema.HasAPIKeyHash {
		return StorageTokenAndHash, nil
	}
	var n int
	err := d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM apikey WHERE "+tokenTest("api_key")+" LIMIT 1) t").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("langflowdb: detect key storage: %w", err)
	}
	if n > 0 {
		return StorageToken, nil
	}
	return StoragePlaintext, nil
}

// q rewrites ? placeholders for PostgreSQL.
func (d *DB) q(query string) string {
	if d.dialect == sqldialect.Postgres {
		return sqlutil.Dollar(query)
	}
	return query
}

// idArg converts a canonical UUID to its stored form: 32 hex digits on
// SQLite (SQLAlchemy's CHAR(32)), the canonical text for PostgreSQL's uuid.
// ok is false when id is not a UUID (no row can have it).
func (d *DB) idArg(id string) (any, bool) {
	c, err := canonicalID(id)
	if err != nil {
		return nil, false
	}
	if d.dialect == sqldialect.SQLite {
		return strings.ReplaceAll(c, "-", ""), true
	}
	return c, true
}

// canonicalID returns the 36-character lower-case form of a UUID given in
// that form or as 32 hexadecimal digits.
func canonicalID(s string) (string, error) {
	h := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(h) != 32 || (len(s) != 32 && len(s) != 36) {
		return "", fmt.Errorf("langflowdb: %q is not a UUID", s)
	}
	if len(s) == 36 && (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
		return "", fmt.Errorf("langflowdb: %q is not a UUID", s)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("langflowdb: %q is not a UUID", s)
	}
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// uuidValue scans a UUID column (CHAR(32) text, uuid text or 16 raw bytes)
// into its canonical form.
type uuidValue struct{ s string }

func (u *uuidValue) Scan(src any) error {
	var raw string
	switch x := src.(type) {
	case string:
		raw = x
	case []byte:
		if len(x) == 16 {
			raw = hex.EncodeToString(x)
		} else {
			raw = string(x)
		}
	case [16]byte:
		raw = hex.EncodeToString(x[:])
	default:
		return fmt.Errorf("cannot scan %T into a UUID", src)
	}
	c, err := canonicalID(raw)
	if err != nil {
		return err
	}
	u.s = c
	return nil
}

// sqliteTime is how SQLAlchemy stores a DateTime in SQLite, the form
// Langflow reads back: naive, UTC by Langflow's convention, microseconds.
const sqliteTime = "2006-01-02 15:04:05.000000"

// timeArg is t as a query argument for a DateTime column.
func (d *DB) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d.dialect == sqldialect.SQLite {
		return t.Format(sqliteTime)
	}
	return t
}

func (d *DB) nullTimeArg(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return d.timeArg(*t)
}

// tokenTest is an SQL condition: column holds a Fernet token by Langflow's
// test (it starts with "gAAAAA", case-sensitive: SQLite's LIKE is not).
func tokenTest(column string) string { return "substr(" + column + ", 1, 6) = 'gAAAAA'" }

// Detect reports whether db holds Langflow's tables: an apikey table with
// an api_key column (keyflow's own apikey table has none). It writes
// nothing.
func Detect(ctx context.Context, db *sql.DB, dialect sqldialect.Dialect) (bool, error) {
	d := &DB{db: db, dialect: dialect}
	cols, err := d.columns(ctx, "apikey")
	if err != nil {
		return false, err
	}
	return cols["api_key"] && cols["user_id"], nil
}
