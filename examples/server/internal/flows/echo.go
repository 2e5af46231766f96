package flows

import "context"

// EnsureEcho gives the superuser the demo flow "Echo" (endpoint name
// "echo"), whose field api_key is bound to the global variable
// OPENAI_API_KEY, and reports whether it created it. Run it under the
// start-up lock: one demo flow, however many instances start.
func (s *Store) EnsureEcho(ctx context.Context, superuserID string) (f Flow, created bool, err error) {
	flows, err := s.ByUser(ctx, superuserID)
	if err != nil {
		return Flow{}, false, err
	}
	for _, f := range flows {
		if f.Name == "Echo" {
			return f, false, nil
		}
	}
	f, err = s.Create(ctx, superuserID, "Echo", "echo", map[string]Field{
		"api_key": {Variable: "OPENAI_API_KEY"},
	})
	return f, err == nil, err
}
