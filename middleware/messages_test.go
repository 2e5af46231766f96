package middleware_test

// Langflow's exact texts, which the middleware answers and logs (see
// docs/langflow-compatibility.md#authentication-errors). The tests keep their
// own copies so that a change of the middleware's wording fails them.
const (
	msgNoKey          = "An API key must be passed as query or header"
	msgInvalidKey     = "Invalid or missing API key"
	msgAutoLoginNoKey = "Since v1.5, LANGFLOW_AUTO_LOGIN requires a valid API key. Set LANGFLOW_SKIP_AUTH_AUTO_LOGIN=true to skip this check. Please update your authentication method."
	msgUnavailable    = "Authentication service unavailable"
	msgMissingScope   = "API key lacks the required scope"
	autoLoginWarning  = "In v2.0, LANGFLOW_SKIP_AUTH_AUTO_LOGIN will be removed. Please update your authentication method."
)
