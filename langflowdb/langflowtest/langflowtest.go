// Package langflowtest builds Langflow databases for tests: the user,
// apikey and variable tables of each schema generation, on SQLite or
// PostgreSQL, as Langflow's Alembic migrations define them, and rows made by
// Langflow's own rules (keys in each storage form its versions wrote,
// Credential and Generic variables, an inactive, an expired, a deleted key,
// two users). It imports no driver: the test opens the *sql.DB.
//
// The table definitions are written from Langflow's migrations
// (src/backend/base/langflow/alembic/versions/260dbcc8b680_adds_tables.py
// for user and apikey, 1a110b568907 and 1f4d6df60295 for variable and its
// default_fields, 50bdbf646c1c for its category, and the later additions of
// api_key_hash and expires_at) and its models
// (services/database/models/{user,api_key,variable}/model.py): UUIDs are
// CHAR(32) hexadecimal on SQLite and uuid on PostgreSQL, times are
// SQLAlchemy DateTime (naive UTC text on SQLite), booleans are SQLAlchemy
// Boolean (the integers 0 and 1 on SQLite).
//
// A Langflow database exists in two shapes: made by its migrations (an
// install upgraded from an older version) or by its models' create_all (a
// fresh install, which then stamps the migrations). They differ in server
// defaults and nullability: apikey.created_at has a server default only in
// the models' shape; variable.created_at is NOT NULL without a default in
// the migrations' shape (the migration meant to relax it,
// 58b28437a398_modify_nullable.py, changes nothing) and nullable with a
// default in the models'; variable.category has the server default
// 'Global' only in the migration's shape (the model sets it in Python).
// The fixtures take the stricter side of each difference (no server
// default, NOT NULL), so that a store that leaves a column to a default
// some Langflow databases lack fails here.
package langflowtest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// Generation is a Langflow schema generation of the apikey table.
type Generation int

// The generations.
const (
	// Gen17 is Langflow ≤ 1.7: api_key holds the key in clear.
	Gen17 Generation = iota + 1
	// Gen18 is Langflow 1.8 before the hash column: api_key holds a Fernet
	// token (rows written by 1.7 keep their plaintext).
	Gen18
	// Gen18Hash adds api_key_hash (SHA-256 hex); older rows have none.
	Gen18Hash
	// GenNewest adds expires_at.
	GenNewest
)

// Generations lists every generation, oldest first.
var Generations = []Generation{Gen17, Gen18, Gen18Hash, GenNewest}

// String names the generation, e.g. "langflow-1.7-plaintext".
func (g Generation) String() string {
	switch g {
	case Gen17:
		return "langflow-1.7-plaintext"
	case Gen18:
		return "langflow-1.8-token"
	case Gen18Hash:
		return "langflow-1.8-token-hash"
	case GenNewest:
		return "langflow-newest-expiry"
	}
	return fmt.Sprintf("Generation(%d)", int(g))
}

// HasHash reports whether the generation has api_key_hash.
func (g Generation) HasHash() bool { return g >= Gen18Hash }

// HasExpiry reports whether the generation has expires_at.
func (g Generation) HasExpiry() bool { return g >= GenNewest }

// HasCategory reports whether the generation's variable table has category
// (added by 50bdbf646c1c, October 2025; absent from the 1.8 development line
// of January 2026, so only the newest fixture has it).
func (g Generation) HasCategory() bool { return g >= GenNewest }

// Labels of the fixture's keys.
const (
	KeyPlain    = "plain"    // plaintext row (every generation; hashless from Gen18Hash on)
	KeyToken    = "token"    // token row without hash (Gen18 on)
	KeyHashed   = "hashed"   // token and hash (Gen18Hash on)
	KeyAlice    = "alice"    // the second user's key, in the generation's newest form
	KeyInactive = "inactive" // is_active false
	KeyExpired  = "expired"  // expires_at in the past (GenNewest)
	KeyShared   = "shared"   // two rows share its hash (Gen18Hash on): refused
	KeyDeleted  = "deleted"  // made, then deleted from the table: refused
)

// Password is every fixture user's password, and PasswordHash its bcrypt
// hash in the form Langflow's passlib writes ($2b$, here at cost 4).
const (
	Password     = "fixture-password"
	PasswordHash = "$2b$04$Pvx1ya9qFXAuL76XB3cZb.81UItxtejhY3aaB.vREbzsvGaKtA/Jq"
)

// Key is one key of the fixture.
type Key struct {
	ID, UserID, Plaintext string
	Uses                  int64 // total_uses as seeded
}

// User is one user of the fixture.
type User struct{ ID, Username string }

// Var is one variable of the fixture, with its value in clear.
type Var struct {
	ID, UserID, Name, Type, Plain string
	Encrypted                     bool
}

// Fixture is what Create made.
type Fixture struct {
	Generation Generation
	Dialect    sqldialect.Dialect
	Superuser  User // "langflow", a superuser
	Alice      User // "alice"
	Keys       map[string]Key
	Vars       map[string]Var
}

// Valid lists the labels of the keys that must verify.
func (f *Fixture) Valid() []string {
	out := []string{KeyPlain, KeyAlice}
	if f.Generation >= Gen18 {
		out = append(out, KeyToken)
	}
	if f.Generation.HasHash() {
		out = append(out, KeyHashed)
	}
	return out
}

// Refused lists the labels of the keys that must not verify.
func (f *Fixture) Refused() []string {
	out := []string{KeyInactive, KeyDeleted}
	if f.Generation.HasHash() {
		out = append(out, KeyShared)
	}
	if f.Generation.HasExpiry() {
		out = append(out, KeyExpired)
	}
	return out
}

// Schema returns the statements that create the generation's user, apikey,
// variable and alembic_version tables.
func Schema(g Generation, dialect sqldialect.Dialect) []string {
	uuid, ts, tstz, js := "CHAR(32)", "DATETIME", "DATETIME", "JSON"
	if dialect == sqldialect.Postgres {
		uuid, ts, tstz = "UUID", "TIMESTAMP WITHOUT TIME ZONE", "TIMESTAMP WITH TIME ZONE"
	}
	categoryCol := ""
	if g.HasCategory() {
		categoryCol = ",\n\tcategory VARCHAR"
	}
	keyExtra := ""
	if g.HasHash() {
		keyExtra += ",\n\tapi_key_hash VARCHAR"
	}
	if g.HasExpiry() {
		keyExtra += ",\n\texpires_at " + tstz
	}
	stmts := []string{
		`CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)`,
		// user: 260dbcc8b680 and later columns (profile_image, store_api_key, optins).
		`CREATE TABLE "user" (
	id ` + uuid + ` NOT NULL,
	username VARCHAR NOT NULL,
	password VARCHAR NOT NULL,
	profile_image VARCHAR,
	is_active BOOLEAN NOT NULL,
	is_superuser BOOLEAN NOT NULL,
	create_at ` + ts + ` NOT NULL,
	updated_at ` + ts + ` NOT NULL,
	last_login_at ` + ts + `,
	store_api_key VARCHAR,
	optins ` + js + `,
	CONSTRAINT pk_user PRIMARY KEY (id),
	CONSTRAINT uq_user_id UNIQUE (id))`,
		`CREATE UNIQUE INDEX ix_user_username ON "user" (username)`,
		// apikey: 260dbcc8b680, created_at made timezone-aware
		// (4e5980a44eaa; no server default in this shape), then
		// api_key_hash and expires_at. total_uses and is_active have
		// Python-side defaults only.
		`CREATE TABLE apikey (
	name VARCHAR,
	created_at ` + tstz + ` NOT NULL,
	last_used_at ` + ts + `,
	total_uses INTEGER NOT NULL,
	is_active BOOLEAN NOT NULL,
	id ` + uuid + ` NOT NULL,
	api_key VARCHAR NOT NULL,
	user_id ` + uuid + ` NOT NULL` + keyExtra + `,
	CONSTRAINT pk_apikey PRIMARY KEY (id),
	CONSTRAINT uq_apikey_id UNIQUE (id),
	CONSTRAINT fk_apikey_user_id_user FOREIGN KEY (user_id) REFERENCES "user" (id))`,
		`CREATE UNIQUE INDEX ix_apikey_api_key ON apikey (api_key)`,
		`CREATE INDEX ix_apikey_name ON apikey (name)`,
		`CREATE INDEX ix_apikey_user_id ON apikey (user_id)`,
		// variable: 1a110b568907 (created_at NOT NULL, no default),
		// timezone-aware times (4e5980a44eaa), default_fields
		// (1f4d6df60295), category (50bdbf646c1c; no server default, as
		// the models make it); no unique (user_id, name).
		`CREATE TABLE variable (
	name VARCHAR NOT NULL,
	value VARCHAR NOT NULL,
	type VARCHAR,
	id ` + uuid + ` NOT NULL,
	created_at ` + tstz + ` NOT NULL,
	updated_at ` + tstz + `,
	user_id ` + uuid + ` NOT NULL,
	default_fields ` + js + categoryCol + `,
	PRIMARY KEY (id),
	CONSTRAINT fk_variable_user_id FOREIGN KEY (user_id) REFERENCES "user" (id))`,
	}
	if g.HasHash() {
		stmts = append(stmts, `CREATE INDEX ix_apikey_api_key_hash ON apikey (api_key_hash)`)
	}
	return stmts
}

// seeder writes rows the way Langflow's ORM does.
type seeder struct {
	db      *sql.DB
	dialect sqldialect.Dialect
	keyring *secrets.Keyring
	now     time.Time
}

func (s *seeder) id(canonical string) any {
	if s.dialect == sqldialect.Postgres {
		return canonical
	}
	return strings.ReplaceAll(canonical, "-", "")
}

func (s *seeder) ts(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if s.dialect == sqldialect.Postgres {
		return t
	}
	return t.Format("2006-01-02 15:04:05.000000")
}

func (s *seeder) exec(ctx context.Context, q string, args ...any) error {
	if s.dialect == sqldialect.Postgres {
		q = sqlutil.Dollar(q)
	}
	_, err := s.db.ExecContext(ctx, q, args...)
	return err
}

// Create makes the generation's tables on db and fills them. keyring holds
// Langflow's secret (LANGFLOW_SECRET_KEY); it encrypts the token rows and
// the Credential variables.
func Create(ctx context.Context, db *sql.DB, dialect sqldialect.Dialect, g Generation, keyring *secrets.Keyring) (*Fixture, error) {
	for _, stmt := range Schema(g, dialect) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("langflowtest: create schema: %w", err)
		}
	}
	s := &seeder{db: db, dialect: dialect, keyring: keyring, now: time.Now().UTC()}
	f := &Fixture{Generation: g, Dialect: dialect, Keys: map[string]Key{}, Vars: map[string]Var{}}
	if err := s.exec(ctx, `INSERT INTO alembic_version (version_num) VALUES (?)`, g.String()); err != nil {
		return nil, err
	}
	var err error
	if f.Superuser, err = s.user(ctx, "langflow", true, s.now.Add(-48*time.Hour)); err != nil {
		return nil, err
	}
	if f.Alice, err = s.user(ctx, "alice", false, s.now.Add(-47*time.Hour)); err != nil {
		return nil, err
	}
	if err := s.seedKeys(ctx, f); err != nil {
		return nil, err
	}
	if err := s.seedVariables(ctx, f); err != nil {
		return nil, err
	}
	return f, nil
}

// seedKeys adds the generation's keys (Key… labels) to f, in the forms that
// generation stores.
func (s *seeder) seedKeys(ctx context.Context, f *Fixture) error {
	g, su := f.Generation, f.Superuser.ID
	add := func(label, user, form string, active bool, expires *time.Time, uses int64) error {
		k, err := s.key(ctx, user, label, form, active, expires, uses)
		if err == nil {
			f.Keys[label] = k
		}
		return err
	}
	newest := "plain"
	switch {
	case g.HasHash():
		newest = "token+hash"
	case g == Gen18:
		newest = "token"
	}
	for _, k := range []struct {
		label, user, form string
		active            bool
		uses              int64
	}{
		{KeyPlain, su, "plain", true, 3},
		{KeyAlice, f.Alice.ID, newest, true, 0},
		{KeyInactive, su, newest, false, 1},
		{KeyDeleted, su, newest, true, 5},
	} {
		if err := add(k.label, k.user, k.form, k.active, nil, k.uses); err != nil {
			return err
		}
	}
	if err := s.exec(ctx, `DELETE FROM apikey WHERE id = ?`, s.id(f.Keys[KeyDeleted].ID)); err != nil {
		return err
	}
	if g >= Gen18 {
		if err := add(KeyToken, su, "token", true, nil, 2); err != nil {
			return err
		}
	}
	if g.HasHash() {
		if err := add(KeyHashed, su, "token+hash", true, nil, 7); err != nil {
			return err
		}
		// The same key stored twice with its hash: Langflow refuses it.
		if err := add(KeyShared, su, "token+hash", true, nil, 0); err != nil {
			return err
		}
		if _, err := s.keyRow(ctx, ids.New(), su, "shared copy", f.Keys[KeyShared].Plaintext, "token+hash", true, nil, 0); err != nil {
			return err
		}
	}
	if g.HasExpiry() {
		past, future := s.now.Add(-time.Hour), s.now.Add(30*24*time.Hour)
		if err := add(KeyExpired, su, "token+hash", true, &past, 4); err != nil {
			return err
		}
		// A key that expires later verifies.
		return add("expiring", su, "token+hash", true, &future, 0)
	}
	return nil
}

// seedVariables adds f's variables: a Credential with Apply-To fields, a
// Generic in clear (Langflow since late 2025), a Generic encrypted by older
// versions, and the second user's Credential.
func (s *seeder) seedVariables(ctx context.Context, f *Fixture) error {
	su := f.Superuser.ID
	for _, v := range []struct {
		user, name, typ, plain string
		encrypt                bool
		fields                 string
	}{
		{su, "OPENAI_API_KEY", "Credential", "sk-openai-fixture-value", true, `["OpenAI", "api_key"]`},
		{su, "MODEL_NAME", "Generic", "gpt-4o-mini", false, `[]`},
		{su, "OLD_GENERIC", "Generic", "encrypted by an old Langflow", true, `[]`},
		{f.Alice.ID, "ALICE_TOKEN", "Credential", "alice-secret-value", true, `[]`},
	} {
		value := v.plain
		if v.encrypt {
			var err error
			if value, err = s.keyring.Encrypt(v.plain); err != nil {
				return err
			}
		}
		id := ids.New()
		created := s.now.Add(-24 * time.Hour)
		cols, args := "id, user_id, name, value, type, default_fields, created_at", []any{s.id(id), s.id(v.user), v.name, value, v.typ, v.fields, s.ts(created)}
		if f.Generation.HasCategory() {
			// Langflow's model writes Global; its category migration moved
			// the providers' Credentials to LLM.
			category := "Global"
			if v.name == "OPENAI_API_KEY" {
				category = "LLM"
			}
			cols, args = cols+", category", append(args, category)
		}
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
		if err := s.exec(ctx, "INSERT INTO variable ("+cols+") VALUES ("+marks+")", args...); err != nil {
			return fmt.Errorf("langflowtest: variable: %w", err)
		}
		f.Vars[v.name] = Var{ID: id, UserID: v.user, Name: v.name, Type: v.typ, Plain: v.plain, Encrypted: v.encrypt}
	}
	return nil
}

func (s *seeder) user(ctx context.Context, name string, super bool, at time.Time) (User, error) {
	id := ids.New()
	err := s.exec(ctx, `INSERT INTO "user" (id, username, password, is_active, is_superuser, create_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		s.id(id), name, PasswordHash, true, super, s.ts(at), s.ts(at))
	if err != nil {
		return User{}, fmt.Errorf("langflowtest: user: %w", err)
	}
	return User{ID: id, Username: name}, nil
}

// key makes a new key (Langflow's format) and stores it in form "plain",
// "token" or "token+hash".
func (s *seeder) key(ctx context.Context, user, name, form string, active bool, expires *time.Time, uses int64) (Key, error) {
	plain, err := apikey.Langflow.Generate()
	if err != nil {
		return Key{}, err
	}
	id := ids.New()
	return s.keyRow(ctx, id, user, name, plain, form, active, expires, uses)
}

func (s *seeder) keyRow(ctx context.Context, id, user, name, plain, form string, active bool, expires *time.Time, uses int64) (Key, error) {
	stored := plain
	if form != "plain" {
		var err error
		if stored, err = s.keyring.Encrypt(plain); err != nil {
			return Key{}, err
		}
	}
	cols := "id, user_id, name, api_key, created_at, total_uses, is_active"
	args := []any{s.id(id), s.id(user), name, stored, s.ts(s.now.Add(-time.Hour)), uses, active}
	if form == "token+hash" {
		cols += ", api_key_hash"
		args = append(args, apikey.HashKey(plain).String())
	}
	if expires != nil {
		cols += ", expires_at"
		args = append(args, s.ts(*expires))
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	if err := s.exec(ctx, "INSERT INTO apikey ("+cols+") VALUES ("+marks+")", args...); err != nil {
		return Key{}, fmt.Errorf("langflowtest: key: %w", err)
	}
	return Key{ID: id, UserID: user, Plaintext: plain, Uses: uses}, nil
}

// DeleteKey deletes a key's row as Langflow's DELETE /api/v1/api_key/{id}
// does.
func DeleteKey(ctx context.Context, db *sql.DB, dialect sqldialect.Dialect, id string) error {
	s := &seeder{db: db, dialect: dialect}
	return s.exec(ctx, `DELETE FROM apikey WHERE id = ?`, s.id(id))
}

// SetActive sets a key's is_active column.
func SetActive(ctx context.Context, db *sql.DB, dialect sqldialect.Dialect, id string, active bool) error {
	s := &seeder{db: db, dialect: dialect}
	return s.exec(ctx, `UPDATE apikey SET is_active = ? WHERE id = ?`, active, s.id(id))
}

// SetUserActive sets a user's is_active column, as a Langflow superuser
// deactivating or activating that user does.
func SetUserActive(ctx context.Context, db *sql.DB, dialect sqldialect.Dialect, id string, active bool) error {
	s := &seeder{db: db, dialect: dialect}
	return s.exec(ctx, `UPDATE "user" SET is_active = ? WHERE id = ?`, active, s.id(id))
}

// KeyRow reads back what Langflow would read of a key: total_uses,
// last_used_at (nil when NULL), and api_key_hash ("" when absent or NULL).
func KeyRow(ctx context.Context, db *sql.DB, dialect sqldialect.Dialect, g Generation, id string) (uses int64, lastUsed *time.Time, hash, stored string, err error) {
	s := &seeder{db: db, dialect: dialect}
	// On SQLite, the stored text itself (drivers turn DATETIME columns into
	// times; the cast keeps the text Langflow will parse).
	q := "SELECT total_uses, CAST(last_used_at AS TEXT), api_key"
	if dialect == sqldialect.Postgres {
		q = "SELECT total_uses, last_used_at, api_key"
	}
	if g.HasHash() {
		q += ", api_key_hash"
	}
	q += " FROM apikey WHERE id = ?"
	if dialect == sqldialect.Postgres {
		q = sqlutil.Dollar(q)
	}
	var last sql.NullString
	var lastT sql.NullTime
	var h sql.NullString
	dest := []any{&uses, &last, &stored}
	if dialect == sqldialect.Postgres {
		dest[1] = &lastT
	}
	if g.HasHash() {
		dest = append(dest, &h)
	}
	if err = db.QueryRowContext(ctx, q, s.id(id)).Scan(dest...); err != nil {
		return
	}
	switch {
	case lastT.Valid:
		t := lastT.Time.UTC()
		lastUsed = &t
	case last.Valid:
		// SQLite: the text SQLAlchemy reads; anything else is a bug.
		t, perr := time.Parse("2006-01-02 15:04:05.000000", last.String)
		if perr != nil {
			err = fmt.Errorf("last_used_at %q is not in SQLAlchemy's SQLite form: %w", last.String, perr)
			return
		}
		lastUsed = &t
	}
	return uses, lastUsed, h.String, stored, nil
}
