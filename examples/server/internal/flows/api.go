package flows

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyflow-dev/keyflow/examples/server/internal/httpapi"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables"
)

// API is the flows' HTTP API (List, Create) and the run API (Run). Its
// handlers expect an authenticated principal.
type API struct {
	Flows    *Store
	Resolver *variables.Resolver
	Log      *slog.Logger
}

// FlowRead is a flow as the API shows it. Literal field values are never
// returned: they show as "********".
type FlowRead struct {
	ID           string           `json:"id"`
	Name         string           `json:"name"`
	EndpointName *string          `json:"endpoint_name"`
	ComponentID  string           `json:"component_id"`
	UserID       string           `json:"user_id"`
	Fields       map[string]Field `json:"fields"`
	CreatedAt    time.Time        `json:"created_at"`
}

func toFlowJSON(f Flow) FlowRead {
	fields := make(map[string]Field, len(f.Fields))
	for name, fld := range f.Fields {
		if fld.Value != "" {
			fld.Value = "********"
		}
		fields[name] = fld
	}
	var endpoint *string
	if f.EndpointName != "" {
		endpoint = &f.EndpointName
	}
	return FlowRead{ID: f.ID, Name: f.Name, EndpointName: endpoint, ComponentID: ComponentID(f),
		UserID: f.UserID, Fields: fields, CreatedAt: f.CreatedAt}
}

// List is GET /api/v1/flows/: the caller's flows, oldest first (from the
// cache, cache.go).
func (a *API) List(w http.ResponseWriter, r *http.Request) {
	caller, _ := middleware.FromRequest(r)
	userID := caller.UserID
	uf, err := a.Flows.cached(r.Context(), userID)
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "list flows", err)
		return
	}
	// The list as httpjson.Write would write it, encoded once per fill of
	// the cache.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(uf.list)
}

// Create is POST /api/v1/flows/: {"name": "...", "endpoint_name": "my-flow", "fields": {"api_key":
// {"variable": "OPENAI_API_KEY"}, "model": {"value": "gpt-4o"}, "token": {}}}
// → 201. endpoint_name is optional; Langflow's rules: letters, digits, "-"
// and "_" (else 422), unique among the user's flows (else 400 "Endpoint name
// must be unique").
func (a *API) Create(w http.ResponseWriter, r *http.Request) {
	caller, _ := middleware.FromRequest(r)
	userID := caller.UserID
	var in struct {
		Name         string           `json:"name"`
		EndpointName *string          `json:"endpoint_name"`
		Fields       map[string]Field `json:"fields"`
	}
	if !httpjson.Decode(w, r, &in) {
		return
	}
	// Names go to TEXT columns (PostgreSQL refuses NUL) and back to every
	// client: checked without echoing the input (Check).
	if msg := Check(in.Name, in.Fields); msg != "" {
		httpjson.Detail(w, http.StatusBadRequest, msg)
		return
	}
	endpoint := ""
	if in.EndpointName != nil {
		endpoint = *in.EndpointName
		if len(endpoint) > maxEndpointName || !endpointNameRe.MatchString(endpoint) {
			httpjson.Detail(w, http.StatusUnprocessableEntity, msgEndpointCharset)
			return
		}
	}
	f, err := a.Flows.Create(r.Context(), userID, in.Name, endpoint, in.Fields)
	if errors.Is(err, ErrEndpointTaken) {
		httpjson.Detail(w, http.StatusBadRequest, "Endpoint name must be unique")
		return
	}
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "create flow", err)
		return
	}
	httpjson.Write(w, http.StatusCreated, toFlowJSON(f))
}
