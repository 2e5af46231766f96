package langflowdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/secrets"
)

// ErrKeyRequired is returned by KeyStore.Insert: a Langflow row holds the key
// (or its token), which a Record alone does not carry. An apikey.Manager
// calls InsertKey instead.
var ErrKeyRequired = errors.New("langflowdb: Langflow's apikey table needs the key itself; insert through InsertKey (apikey.Manager does)")

// ErrUnsupported is returned (wrapped) when a record uses what the Langflow
// schema cannot store: scopes, or an expiry before expires_at exists.
var ErrUnsupported = errors.New("langflowdb: not supported by Langflow's schema")

// KeyStore is an apikey.Store on Langflow's apikey table, with the
// optional capabilities apikey.KeyInserter (keys are written as Langflow
// writes them) and apikey.CacheBound (the revocation bound). It is safe for
// concurrent use, across processes too: several KeyStores and a running
// Langflow may share the table. DB.Keys returns one; the zero value is not
// usable.
type KeyStore struct {
	d      *DB
	cols   string
	legacy legacyIndex
}

var (
	_ apikey.Store       = (*KeyStore)(nil)
	_ apikey.KeyInserter = (*KeyStore)(nil)
	_ apikey.CacheBound  = (*KeyStore)(nil)
)

// Keys returns the KeyStore of the database. Every call returns a new store
// with its own index of hashless rows; share one.
func (d *DB) Keys() *KeyStore {
	cols := "id, user_id, name, api_key, created_at, last_used_at, total_uses, is_active"
	if d.schema.HasAPIKeyHash {
		cols += ", api_key_hash"
	}
	if d.schema.HasExpiresAt {
		cols += ", expires_at"
	}
	return &KeyStore{d: d, cols: cols, legacy: legacyIndex{byID: map[string]legacyEntry{}, byHash: map[apikey.Hash][]string{}}}
}

// MaxCacheAge implements apikey.CacheBound: Config.MaxCacheAge.
func (s *KeyStore) MaxCacheAge() time.Duration { return s.d.opts.MaxCacheAge }

// keyRow is one row of the apikey table as read.
type keyRow struct {
	id, userID        uuidValue
	name              sql.NullString
	apiKey            string
	created, lastUsed sqlutil.NullTime
	totalUses         int64
	active            bool
	hash              sql.NullString
	expires           sqlutil.NullTime
}

type scanner interface{ Scan(dest ...any) error }

func (s *KeyStore) scan(row scanner) (keyRow, error) {
	var r keyRow
	dest := []any{&r.id, &r.userID, &r.name, &r.apiKey, &r.created, &r.lastUsed, &r.totalUses, &r.active}
	if s.d.schema.HasAPIKeyHash {
		dest = append(dest, &r.hash)
	}
	if s.d.schema.HasExpiresAt {
		dest = append(dest, &r.expires)
	}
	err := row.Scan(dest...)
	return r, err
}

// reveal returns the key a stored api_key value holds: the value itself
// when it is not a Fernet token (Langflow ≤ 1.7 rows), else its decryption.
// ok is false when the token does not open under the keyring.
func (s *KeyStore) reveal(stored string) (string, bool) {
	if !secrets.IsEncrypted(stored) {
		return stored, stored != ""
	}
	if s.d.keyring == nil {
		return "", false
	}
	plain, err := s.d.keyring.Decrypt(stored)
	if err != nil {
		return "", false
	}
	return plain, true
}

// record turns a row into an apikey.Record. The hash is the api_key_hash
// column when set, else the SHA-256 of the revealed key; a row whose token
// does not open has a zero hash (it verifies with no key) and shows the
// token's first characters, as Langflow's list does.
func (s *KeyStore) record(r keyRow) (apikey.Record, error) {
	rec := apikey.Record{
		ID:         r.id.s,
		UserID:     r.userID.s,
		Name:       r.name.String,
		TotalUses:  r.totalUses,
		Active:     r.active,
		LastUsedAt: r.lastUsed.Ptr(),
		ExpiresAt:  r.expires.Ptr(),
	}
	if !r.created.Valid {
		return apikey.Record{}, fmt.Errorf("langflowdb: key %s: created_at is NULL", rec.ID)
	}
	rec.CreatedAt = r.created.T
	plain, ok := s.reveal(r.apiKey)
	shown := r.apiKey
	if ok {
		shown = plain
		rec.Hash = apikey.HashKey(plain)
	}
	rec.Prefix, rec.Length = shown[:min(8, len(shown))], len(shown)
	if r.hash.Valid && r.hash.String != "" {
		h, err := apikey.ParseHash(r.hash.String)
		if err != nil {
			return apikey.Record{}, fmt.Errorf("langflowdb: key %s: api_key_hash: %w", rec.ID, err)
		}
		rec.Hash = h
	}
	return rec, nil
}

func (s *KeyStore) query(ctx context.Context, op, where string, args ...any) ([]apikey.Record, error) {
	rows, err := s.d.db.QueryContext(ctx, s.d.q("SELECT "+s.cols+" FROM apikey "+where), args...)
	if err != nil {
		return nil, fmt.Errorf("langflowdb: %s: %w", op, err)
	}
	defer func() { _ = rows.Close() }()
	out := []apikey.Record{}
	for rows.Next() {
		r, err := s.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("langflowdb: %s: %w", op, err)
		}
		rec, err := s.record(r)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("langflowdb: %s: %w", op, err)
	}
	return out, nil
}

// ByHash implements apikey.Store as Langflow's check does
// (docs/langflow-compatibility.md#verifying-langflow-keys): rows whose
// api_key_hash is h first; when there are none, hashless rows (plaintext or
// token) whose key hashes to h, and the one found gets its hash backfilled
// when the column exists and the key is valid. More than one active row
// for h is a data integrity violation: logged, and ErrNotFound.
func (s *KeyStore) ByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	return s.byHash(ctx, h, false)
}

// byHash is ByHash; force rereads the hashless rows even when they were
// read less than LegacyRescanInterval ago.
func (s *KeyStore) byHash(ctx context.Context, h apikey.Hash, force bool) (apikey.Record, error) {
	if s.d.schema.HasAPIKeyHash {
		recs, err := s.query(ctx, "by hash", "WHERE api_key_hash = ?", h.String())
		if err != nil {
			return apikey.Record{}, err
		}
		if len(recs) > 0 {
			return s.pick(h, recs)
		}
	}
	rec, err := s.legacyByHash(ctx, h, force)
	if err != nil {
		return apikey.Record{}, err
	}
	if s.d.schema.HasAPIKeyHash && rec.Active && (rec.ExpiresAt == nil || time.Now().Before(*rec.ExpiresAt)) {
		s.backfill(ctx, rec)
	}
	return rec, nil
}

// pick chooses among the rows of one hash: the only active one, else an
// inactive one (the Manager then says ErrInactive); two active rows refuse.
func (s *KeyStore) pick(h apikey.Hash, recs []apikey.Record) (apikey.Record, error) {
	var active []apikey.Record
	for _, r := range recs {
		if r.Active {
			active = append(active, r)
		}
	}
	switch {
	case len(active) > 1:
		ids := make([]string, len(active))
		for i, r := range active {
			ids[i] = r.ID
		}
		s.d.log.Error("langflowdb: data integrity violation: API keys share a hash; refusing to authenticate",
			"keys", len(active), "hash_prefix", h.String()[:12], "key_ids", strings.Join(ids, ", "))
		return apikey.Record{}, apikey.ErrNotFound
	case len(active) == 1:
		return active[0], nil
	}
	return recs[0], nil
}

func (s *KeyStore) backfill(ctx context.Context, rec apikey.Record) {
	id, _ := s.d.idArg(rec.ID)
	_, err := s.d.db.ExecContext(ctx, s.d.q("UPDATE apikey SET api_key_hash = ? WHERE id = ? AND api_key_hash IS NULL"), rec.Hash.String(), id)
	if err != nil {
		s.d.log.Warn("langflowdb: could not backfill api_key_hash", "key_id", rec.ID, "err", err)
		return
	}
	s.legacy.forget(rec.ID)
}

// ListByUser implements apikey.Store.
func (s *KeyStore) ListByUser(ctx context.Context, userID string) ([]apikey.Record, error) {
	uid, ok := s.d.idArg(userID)
	if !ok {
		return []apikey.Record{}, ctx.Err()
	}
	return s.query(ctx, "list", "WHERE user_id = ? ORDER BY created_at, id", uid)
}

// Delete implements apikey.Store: a hard delete, as Langflow's own.
func (s *KeyStore) Delete(ctx context.Context, userID, id string) (apikey.Record, error) {
	return s.one(ctx, "delete", "DELETE FROM apikey WHERE id = ? AND user_id = ? RETURNING "+s.cols, nil, userID, id)
}

// SetActive implements apikey.Store on the is_active column.
func (s *KeyStore) SetActive(ctx context.Context, userID, id string, active bool) (apikey.Record, error) {
	return s.one(ctx, "set active", "UPDATE apikey SET is_active = ? WHERE id = ? AND user_id = ? RETURNING "+s.cols, active, userID, id)
}

// one runs a statement on the row (id, userID); lead, when non-nil, is the
// first argument.
func (s *KeyStore) one(ctx context.Context, op, stmt string, lead any, userID, id string) (apikey.Record, error) {
	kid, ok1 := s.d.idArg(id)
	uid, ok2 := s.d.idArg(userID)
	if !ok1 || !ok2 {
		if err := ctx.Err(); err != nil {
			return apikey.Record{}, err
		}
		return apikey.Record{}, apikey.ErrNotFound
	}
	args := []any{kid, uid}
	if lead != nil {
		args = append([]any{lead}, args...)
	}
	r, err := s.scan(s.d.db.QueryRowContext(ctx, s.d.q(stmt), args...))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return apikey.Record{}, apikey.ErrNotFound
	case err != nil:
		return apikey.Record{}, fmt.Errorf("langflowdb: %s: %w", op, err)
	}
	if op == "delete" {
		s.legacy.forget(r.id.s)
	}
	return s.record(r)
}

// Insert implements apikey.Store: it returns ErrKeyRequired, since a
// Langflow row must hold the key. Use InsertKey.
func (s *KeyStore) Insert(ctx context.Context, r apikey.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ErrKeyRequired
}

// InsertKey implements apikey.KeyInserter: it writes r as Langflow writes a
// new key for this schema (see KeyStorage), with r's ID, user, name, times
// and counters. ErrDuplicate when a row has r's ID or a row's key hashes to
// r.Hash.
func (s *KeyStore) InsertKey(ctx context.Context, r apikey.Record, key string) error {
	if apikey.HashKey(key) != r.Hash {
		return errors.New("langflowdb: insert: the key does not match the record's hash")
	}
	if len(r.Scopes) > 0 {
		return fmt.Errorf("%w: key scopes (the apikey table has no scopes column)", ErrUnsupported)
	}
	if !r.Limits.IsZero() {
		return fmt.Errorf("%w: %w (the apikey table has no column for rate limits or quotas)", ErrUnsupported, apikey.ErrLimitsUnsupported)
	}
	if r.ExpiresAt != nil && !s.d.schema.HasExpiresAt {
		return fmt.Errorf("%w: key expiry (this Langflow's apikey table has no expires_at column)", ErrUnsupported)
	}
	id, ok1 := s.d.idArg(r.ID)
	uid, ok2 := s.d.idArg(r.UserID)
	if !ok1 || !ok2 {
		return errors.New("langflowdb: insert: key and user IDs must be UUIDs")
	}
	stored := key
	if s.d.schema.KeyStorage != StoragePlaintext {
		var err error
		if stored, err = s.d.keyring.Encrypt(key); err != nil {
			return fmt.Errorf("langflowdb: insert: encrypt: %w", err)
		}
	}
	// A row of this key may exist in any form: refuse a second one, which
	// would make Langflow refuse both.
	if _, err := s.byHash(ctx, r.Hash, true); err == nil {
		return apikey.ErrDuplicate
	} else if !errors.Is(err, apikey.ErrNotFound) {
		return err
	}
	var name any
	if r.Name != "" {
		name = r.Name
	}
	cols := "id, user_id, name, api_key, created_at, last_used_at, total_uses, is_active"
	args := []any{id, uid, name, stored, s.d.timeArg(r.CreatedAt), s.d.nullTimeArg(r.LastUsedAt), r.TotalUses, r.Active}
	if s.d.schema.KeyStorage == StorageTokenAndHash {
		cols += ", api_key_hash"
		args = append(args, r.Hash.String())
	}
	if s.d.schema.HasExpiresAt {
		cols += ", expires_at"
		args = append(args, s.d.nullTimeArg(r.ExpiresAt))
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	res, err := s.d.db.ExecContext(ctx, s.d.q("INSERT INTO apikey ("+cols+") VALUES ("+marks+") ON CONFLICT DO NOTHING"), args...)
	if err != nil {
		return fmt.Errorf("langflowdb: insert: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("langflowdb: insert: %w", err)
	}
	if n == 0 {
		return apikey.ErrDuplicate
	}
	if s.d.schema.KeyStorage != StorageTokenAndHash {
		s.legacy.add(r.ID, r.Hash, stored)
	}
	return nil
}

// AddUsage implements apikey.Store: per key, total_uses = total_uses + n and
// last_used_at moved forward to the latest use, in one transaction, in ID
// order (so concurrent batches cannot deadlock).
func (s *KeyStore) AddUsage(ctx context.Context, batch []apikey.Usage) error {
	if len(batch) == 0 {
		return ctx.Err()
	}
	batch = slices.Clone(batch)
	slices.SortFunc(batch, func(a, b apikey.Usage) int { return strings.Compare(a.ID, b.ID) })
	tx, err := s.d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("langflowdb: add usage: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, s.d.q("UPDATE apikey SET total_uses = total_uses + ?, "+
		"last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END WHERE id = ?"))
	if err != nil {
		return fmt.Errorf("langflowdb: add usage: %w", err)
	}
	defer func() { _ = stmt.Close() }()
	for _, u := range batch {
		id, ok := s.d.idArg(u.ID)
		if !ok {
			continue
		}
		last := s.d.nullTimeArg(&u.LastUsed)
		if _, err := stmt.ExecContext(ctx, u.Uses, last, last, id); err != nil {
			return fmt.Errorf("langflowdb: add usage: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("langflowdb: add usage: %w", err)
	}
	return nil
}

// legacyIndex maps the hashes of hashless rows (plaintext, or tokens without
// api_key_hash) to their IDs. api_key never changes in a Langflow row, so an
// entry stays right while its row exists; rows are re-read by ID on every
// lookup, so deletions and deactivations are seen at once.
type legacyIndex struct {
	mu     sync.Mutex
	byID   map[string]legacyEntry
	byHash map[apikey.Hash][]string

	scanMu   sync.Mutex
	lastScan time.Time // start of the last completed scan; guarded by scanMu
}

type legacyEntry struct {
	hash   apikey.Hash
	ok     bool     // the key was revealed (a token that opens, or plaintext)
	stored [32]byte // SHA-256 of the stored api_key text: detects a changed row
}

func (x *legacyIndex) lookup(h apikey.Hash) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.byHash[h])
}

// add indexes a hashless row this process wrote.
func (x *legacyIndex) add(id string, h apikey.Hash, stored string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.byID[id]; ok {
		return
	}
	x.byID[id] = legacyEntry{hash: h, ok: true, stored: sha256.Sum256([]byte(stored))}
	x.byHash[h] = append(x.byHash[h], id)
}

func (x *legacyIndex) forget(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.byID[id]
	if !ok {
		return
	}
	delete(x.byID, id)
	if e.ok {
		x.byHash[e.hash] = slices.DeleteFunc(x.byHash[e.hash], func(s string) bool { return s == id })
		if len(x.byHash[e.hash]) == 0 {
			delete(x.byHash, e.hash)
		}
	}
}

// rescan reads the id and api_key of every hashless row and indexes those
// not indexed yet. Concurrent callers share one scan, and unless force is
// set a scan runs at most once per Config.LegacyRescanInterval.
func (s *KeyStore) rescan(ctx context.Context, force bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	called := time.Now()
	x := &s.legacy
	x.scanMu.Lock()
	defer x.scanMu.Unlock()
	if x.lastScan.After(called) || !force && time.Since(x.lastScan) < s.d.opts.LegacyRescanInterval {
		return nil // a scan began after this call did, or one ran just now
	}
	start := time.Now()
	x.mu.Lock()
	old := maps.Clone(x.byID)
	x.mu.Unlock()
	byID, byHash, err := s.scanHashless(ctx, old)
	if err != nil {
		return err
	}
	x.install(old, byID, byHash)
	x.lastScan = start
	return nil
}

// scanHashless reads every row without api_key_hash and indexes it by ID and
// by the hash of the key it reveals, reusing old's entry for a row whose
// stored text has not changed (revealing a token costs a decryption).
func (s *KeyStore) scanHashless(ctx context.Context, old map[string]legacyEntry) (map[string]legacyEntry, map[apikey.Hash][]string, error) {
	q := "SELECT id, api_key FROM apikey"
	if s.d.schema.HasAPIKeyHash {
		q += " WHERE api_key_hash IS NULL"
	}
	rows, err := s.d.db.QueryContext(ctx, q)
	if err != nil {
		return nil, nil, fmt.Errorf("langflowdb: read hashless keys: %w", err)
	}
	defer func() { _ = rows.Close() }()
	byID := make(map[string]legacyEntry, len(old))
	byHash := map[apikey.Hash][]string{}
	for rows.Next() {
		var id uuidValue
		var stored string
		if err := rows.Scan(&id, &stored); err != nil {
			return nil, nil, fmt.Errorf("langflowdb: read hashless keys: %w", err)
		}
		fp := sha256.Sum256([]byte(stored))
		e, ok := old[id.s]
		if !ok || e.stored != fp {
			e = legacyEntry{stored: fp}
			if plain, revealed := s.reveal(stored); revealed {
				e.hash, e.ok = apikey.HashKey(plain), true
			}
		}
		byID[id.s] = e
		if e.ok {
			byHash[e.hash] = append(byHash[e.hash], id.s)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("langflowdb: read hashless keys: %w", err)
	}
	return byID, byHash, nil
}

// install replaces the index with a scan's (byID, byHash), keeping the rows
// this process wrote while the scan ran (add), which the scan may not have
// seen: those in x but not in old, the index the scan started from.
func (x *legacyIndex) install(old, byID map[string]legacyEntry, byHash map[apikey.Hash][]string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, e := range x.byID {
		if _, before := old[id]; before {
			continue
		}
		if _, seen := byID[id]; !seen {
			byID[id] = e
			if e.ok {
				byHash[e.hash] = append(byHash[e.hash], id)
			}
		}
	}
	x.byID, x.byHash = byID, byHash
}

// legacyByHash finds the hashless row whose key hashes to h: from the index,
// rescanning the table when h is not in it.
func (s *KeyStore) legacyByHash(ctx context.Context, h apikey.Hash, force bool) (apikey.Record, error) {
	ids := s.legacy.lookup(h)
	if len(ids) == 0 {
		if err := s.rescan(ctx, force); err != nil {
			return apikey.Record{}, err
		}
		if ids = s.legacy.lookup(h); len(ids) == 0 {
			return apikey.Record{}, apikey.ErrNotFound
		}
	}
	where := "WHERE id = ?"
	if s.d.schema.HasAPIKeyHash {
		where += " AND api_key_hash IS NULL"
	}
	var live []apikey.Record
	for _, id := range ids {
		arg, _ := s.d.idArg(id)
		recs, err := s.query(ctx, "by hash", where, arg)
		if err != nil {
			return apikey.Record{}, err
		}
		if len(recs) == 0 || recs[0].Hash != h {
			s.legacy.forget(id) // deleted, backfilled, or changed
			continue
		}
		live = append(live, recs[0])
	}
	if len(live) == 0 {
		return apikey.Record{}, apikey.ErrNotFound
	}
	return s.pick(h, live)
}

// All returns every key of every user, oldest first, for a move off
// Langflow. A record whose key cannot be recovered (a token that does not
// open under the keyring, in a table without api_key_hash) has a zero Hash.
func (s *KeyStore) All(ctx context.Context) ([]apikey.Record, error) {
	return s.query(ctx, "list all", "ORDER BY created_at, id")
}
