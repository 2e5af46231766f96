package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/audit/audithttp"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
)

// The audit trail end to end: every write through the API and the CLI is
// recorded with its actor and client, a superuser reads it at
// /api/v1/audit/, `audit verify` passes and then names an event changed by
// SQL, no key or Credential value the test made is anywhere in the audit
// table (nor, in plaintext, anywhere in the SQLite file), and the metrics
// are served on their own address.

var metricsRe = regexp.MustCompile(`msg=metrics url=(http://\S+)`)

func TestAuditE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := buildServer(t)
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		e := &e2e{t: t, bin: bin, dir: dir}
		e.openDB = func() (*sql.DB, error) { return dbtest.OpenSQLite(filepath.Join(dir, "keyflow.db")) }
		e.auditWorkflow()
	})
	t.Run("postgres", func(t *testing.T) {
		e := newPostgresE2E(t, bin)
		e.auditWorkflow()
	})
}

func (e *e2e) auditWorkflow() {
	t := e.t
	// A provider key in .env: the server imports it for its users at start.
	const envValue = "env-provider-secret-5b2e90"
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, ".env"), []byte("OPENAI_API_KEY="+envValue+"\n"), 0o600))
	out, errOut, code := e.cli("", nil, "api-key")
	require.Equal(t, 0, code, errOut)
	cliKey := keyRe.FindString(out)
	require.NotEmpty(t, cliKey)
	secrets := []string{cliKey, envValue}

	s := e.startArgs([]string{"--metrics-addr", "127.0.0.1:0"}, "LANGFLOW_AUTO_LOGIN=false", "LANGFLOW_SUPERUSER=admin",
		"LANGFLOW_SUPERUSER_PASSWORD=a-good-admin-password")
	as := func(method, path, body string) (int, string) {
		return s.do(method, path, body, "x-api-key", cliKey, "User-Agent", "audit-e2e/1.0")
	}

	// Keys.
	code, body := as("POST", "/api/v1/api_key/", `{"name":"deploy"}`)
	require.Equal(t, 200, code, body)
	var created struct{ ID, APIKey string }
	created.APIKey = keyRe.FindString(body)
	require.NoError(t, json.Unmarshal([]byte(body), &struct {
		ID *string `json:"id"`
	}{&created.ID}))
	secrets = append(secrets, created.APIKey)
	code, body = as("GET", "/api/v1/api_key/"+created.ID+"/usage?span=30d", "")
	require.Equal(t, 200, code, body)
	assert.Contains(t, body, `"buckets"`)
	code, body = as("PATCH", "/api/v1/api_key/"+created.ID, `{"rate_limits":["100/1m"]}`)
	require.Equal(t, 200, code, body)
	code, body = as("DELETE", "/api/v1/api_key/"+created.ID, "")
	require.Equal(t, 200, code, body)

	// Variables: a Credential created, changed, deleted.
	const value1, value2 = "cred-value-one-1d0c5e", "cred-value-two-9f3a77"
	secrets = append(secrets, value1, value2)
	code, body = as("POST", "/api/v1/variables/", `{"name":"PAYMENTS_TOKEN","value":"`+value1+`","type":"Credential","default_fields":[]}`)
	require.Contains(t, []int{200, 201}, code, body)
	var v struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	code, body = as("PATCH", "/api/v1/variables/"+v.ID, `{"id":"`+v.ID+`","value":"`+value2+`"}`)
	require.Equal(t, 200, code, body)
	code, body = as("DELETE", "/api/v1/variables/"+v.ID, "")
	require.Contains(t, []int{200, 204}, code, body)

	// Sign-ins: a failed one, a good one, a logout.
	const wrongPassword = "not-the-password-7c1f"
	secrets = append(secrets, wrongPassword, "a-good-admin-password")
	code, _ = s.do("POST", "/api/v1/login", "", "Content-Type", "application/x-www-form-urlencoded")
	require.NotEqual(t, 200, code)
	req := func(form string) (int, string, []*http.Cookie) {
		r, err := http.NewRequest("POST", s.url+"/api/v1/login", strings.NewReader(form))
		require.NoError(t, err)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return res.StatusCode, b.String(), res.Cookies()
	}
	code, _, _ = req("username=admin&password=" + wrongPassword)
	require.Equal(t, 401, code)
	code, body, cookies := req("username=admin&password=a-good-admin-password")
	require.Equal(t, 200, code, body)
	var tokens struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &tokens))
	secrets = append(secrets, tokens.AccessToken, tokens.RefreshToken)
	lr, err := http.NewRequest("POST", s.url+"/api/v1/logout", nil)
	require.NoError(t, err)
	for _, c := range cookies {
		lr.AddCookie(c)
	}
	res, err := http.DefaultClient.Do(lr)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)

	// A user created by the superuser.
	code, body = as("POST", "/api/v1/users/", `{"username":"bob","password":"bobs-password-123"}`)
	require.Equal(t, 201, code, body)
	secrets = append(secrets, "bobs-password-123")

	// bob waits for activation: his key is refused, and counted so.
	out, errOut, code = e.cli("", nil, "api-key", "--username", "bob")
	require.Equal(t, 0, code, errOut)
	bobKey := keyRe.FindString(out)
	secrets = append(secrets, bobKey)
	code, body = s.do("GET", "/api/v1/flows/", "", "x-api-key", bobKey)
	require.Equal(t, 403, code, body)

	// The superuser reads the trail, newest first.
	code, body = as("GET", "/api/v1/audit/?limit=100", "")
	require.Equal(t, 200, code, body)
	var page audithttp.Page
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	var actions []string
	imported := 0
	for _, ev := range page.Events {
		if ev.Actor.Session == "env-import" {
			imported++
			assert.Equal(t, "OPENAI_API_KEY", ev.Target.Name)
			assert.Equal(t, "environment", ev.Details["source"])
			continue
		}
		actions = append(actions, string(ev.Action))
	}
	assert.Positive(t, imported, "the environment import is audited")
	events := len(page.Events)
	assert.Equal(t, []string{"key.created", "user.created", "auth.logout", "auth.login", "auth.login_failed", "variable.deleted", "variable.updated",
		"variable.created", "key.deleted", "key.limits_changed", "key.created", "key.created"}, actions)
	byAction := map[string]audithttp.Event{}
	for _, ev := range page.Events {
		if _, seen := byAction[string(ev.Action)]; !seen && ev.Actor.Session != "env-import" {
			byAction[string(ev.Action)] = ev
		}
	}
	assert.Equal(t, `["100/1m"]`, byAction["key.limits_changed"].Details["new_rate_limits"])
	kc := byAction["key.created"]
	for _, ev := range page.Events {
		if ev.Action == "key.created" && ev.Target.Name == "deploy" {
			kc = ev
		}
	}
	assert.Equal(t, "deploy", kc.Target.Name)
	assert.Equal(t, created.APIKey[:8], kc.Details["prefix"])
	assert.NotEmpty(t, kc.Actor.KeyID, "acted with the CLI's key")
	assert.Equal(t, "langflow", kc.Actor.Username, "the CLI's key is the first superuser's")
	assert.Equal(t, "127.0.0.1", kc.ClientIP)
	assert.Equal(t, "audit-e2e/1.0", kc.UserAgent)
	assert.Equal(t, "cli", page.Events[len(page.Events)-1].Actor.Session, "the CLI's key creation, the first event")
	assert.Equal(t, "cli", page.Events[0].Actor.Session, "bob's key, made by the CLI while the server runs")
	vc := byAction["variable.created"]
	assert.Equal(t, "PAYMENTS_TOKEN", vc.Target.Name)
	assert.Equal(t, "Credential", vc.Details["type"])
	assert.Equal(t, "failure", string(byAction["auth.login_failed"].Outcome))
	assert.Regexp(t, `^token:[0-9a-f]{16}$`, byAction["auth.login"].Actor.Session)

	// A filter and a second user who sees only their own events.
	code, body = as("GET", "/api/v1/audit/?action=variable.created,variable.deleted", "")
	require.Equal(t, 200, code, body)
	var filtered audithttp.Page
	require.NoError(t, json.Unmarshal([]byte(body), &filtered))
	var names []string
	for _, ev := range filtered.Events {
		names = append(names, string(ev.Action)+" "+ev.Target.Name)
	}
	assert.Subset(t, names, []string{"variable.deleted PAYMENTS_TOKEN", "variable.created PAYMENTS_TOKEN"})
	assert.Len(t, names, 2+imported, "the API's and the environment import's, nothing else")

	// Metrics on their own address.
	m := metricsRe.FindStringSubmatch(s.log())
	require.NotNil(t, m, s.log())
	res, err = http.Get(m[1])
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Contains(t, fams, "keyflow_apikey_verifications_total")
	require.Contains(t, fams, "keyflow_http_authentications_total")
	inactive := 0.0
	for _, m := range fams["keyflow_http_authentications_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "outcome" && l.GetValue() == "inactive_user" {
				inactive += m.GetCounter().GetValue()
			}
		}
	}
	assert.EqualValues(t, 1, inactive, "bob's refused key")
	code, _ = s.do("GET", "/metrics", "")
	assert.Equal(t, 404, code, "not on the API's address")
	s.stop()

	// -h lists the subcommand.
	out, _, code = e.cli("", nil, "-h")
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^  audit +audit verify: `, out)

	// The chain verifies, and no secret is in any audit row.
	out, errOut, code = e.cli("", nil, "audit", "verify")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, fmt.Sprintf("audit trail intact: %d events", events))
	db, err := e.openDB()
	require.NoError(t, err)
	defer db.Close()
	rows := auditRows(t, db)
	require.NotEmpty(t, rows)
	for _, secret := range secrets {
		require.NotEmpty(t, secret)
		assert.NotContains(t, rows, secret, "a secret in the audit table")
	}
	if !e.postgres {
		for _, f := range []string{"keyflow.db", "keyflow.db-wal"} {
			raw, err := os.ReadFile(filepath.Join(e.dir, f))
			if os.IsNotExist(err) {
				continue
			}
			require.NoError(t, err)
			for _, secret := range []string{cliKey, created.APIKey, value1, value2, wrongPassword} {
				assert.False(t, bytes.Contains(raw, []byte(secret)), "%s holds a secret in plaintext", f)
			}
		}
	}

	// An event changed in the database: verify names it and exits 1.
	_, err = db.Exec("UPDATE audit_event SET target_name = 'someone-else' WHERE seq = 3")
	require.NoError(t, err)
	_, errOut, code = e.cli("", nil, "audit", "verify")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "chain broken at event 3")
}

// auditRows returns every audit row, all columns, as text.
func auditRows(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM audit_event ORDER BY seq")
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		for _, v := range vals {
			fmt.Fprintf(&b, "%v|", v)
			if bs, ok := v.([]byte); ok {
				b.Write(bs)
			}
		}
		b.WriteString("\n")
	}
	require.NoError(t, rows.Err())
	return b.String()
}

// TestAuditTwoServers: two server processes on one PostgreSQL database
// create keys at once; the audit trail is one chain holding every creation.
func TestAuditTwoServers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := buildServer(t)
	first := newPostgresE2E(t, bin)
	second := &e2e{t: t, bin: bin, dir: t.TempDir(), dbURL: first.dbURL, postgres: true, openDB: first.openDB}
	const secret = "LANGFLOW_SECRET_KEY=two-servers-audit-secret-0123456789"
	for _, e := range []*e2e{first, second} {
		require.NoError(t, os.WriteFile(filepath.Join(e.dir, ".env"), nil, 0o600))
	}
	out, errOut, code := first.cli("", []string{secret}, "api-key")
	require.Equal(t, 0, code, errOut)
	key := keyRe.FindString(out)
	servers := []*server{first.start(secret), second.start(secret)}
	const each = 15
	var wg sync.WaitGroup
	errs := make(chan string, 2*each)
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				code, body := s.do("POST", "/api/v1/api_key/", fmt.Sprintf(`{"name":"s%d-%d"}`, i, j), "x-api-key", key)
				if code != 200 {
					errs <- body
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for body := range errs {
		t.Errorf("create: %s", body)
	}
	for _, s := range servers {
		s.stop()
	}
	out, errOut, code = first.cli("", []string{secret}, "audit", "verify")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, fmt.Sprintf("audit trail intact: %d events", 2*each+1), "the CLI's key and every creation, in one chain")
}
