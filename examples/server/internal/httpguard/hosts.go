package httpguard

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/keyflow-dev/keyflow/httpjson"
)

// DNS rebinding: a page on attacker.example can make the operator's browser
// resolve attacker.example to 127.0.0.1 and then talk to this server as a
// same-origin page of attacker.example. The browser still sends
// "Host: attacker.example:7860", and that is the only sign of the attack. While
// auto-login can act as the superuser (the UI's session cookie, or
// LANGFLOW_SKIP_AUTH_AUTO_LOGIN without any credential), such a page would
// manage the superuser's keys and variables. So, while LANGFLOW_AUTO_LOGIN is
// on, or whenever a list of allowed hosts is configured, the server answers
// only requests whose Host is
//
//   - the loopback name localhost (resolved by the system and by browsers
//     themselves, never by a DNS answer an attacker controls; *.localhost is
//     not allowed, as some clients do ask DNS for it);
//   - a loopback address: 127.0.0.0/8, [::1] (also IPv4-mapped);
//   - the --host (LANGFLOW_HOST) value the server listens on;
//   - a name of KEYFLOW_ALLOWED_HOSTS or --allowed-hosts: comma-separated
//     host names or addresses (any port), ".example.com" for the domain and
//     its subdomains, or "*" to turn the check off (behind a proxy that
//     checks Host itself).
//
// Any other Host, or none, is answered 421 Misdirected Request before any
// handler runs, so the session cookie is never issued to a name the server
// does not know. GET /health is exempt (it says nothing and acts as nobody).

// msgHostNotAllowed answers a request whose Host is not allowed. It does not
// repeat the Host header.
const msgHostNotAllowed = "Misdirected request: this server does not answer to that host name " +
	"(it answers localhost, loopback addresses, its --host and the names in KEYFLOW_ALLOWED_HOSTS " +
	"or --allowed-hosts; add the name there to use it)"

// hostPolicy is the set of allowed Host names. The zero value allows only
// localhost and loopback addresses. Checking a Host allocates nothing.
type hostPolicy struct {
	any      bool
	names    map[string]bool     // lower-case names without trailing dot
	addrs    map[netip.Addr]bool // unmapped, without zone
	suffixes []string            // ".example.com": the domain and its subdomains
}

// ParseAllowedHosts reads a comma-separated list of allowed hosts from
// source (KEYFLOW_ALLOWED_HOSTS or --allowed-hosts). Entries are trimmed;
// empty entries are ignored. An entry with a scheme, a path, user info or
// white space inside is an error naming it.
func ParseAllowedHosts(source, v string) ([]string, error) {
	var out []string
	for entry := range strings.SplitSeq(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if entry != "*" {
			name, _, ok := splitHost(strings.TrimPrefix(entry, "."))
			if !ok || name == "" || strings.ContainsAny(entry, "/@ \t\\?#") {
				return nil, fmt.Errorf("%s: %q is not a host name or address (want e.g. keyflow.example.com, .example.com, 192.0.2.7 or *)", source, entry)
			}
		}
		out = append(out, entry)
	}
	return out, nil
}

// newHostPolicy allows localhost, loopback addresses, listenHost (the --host
// value) and the allowed entries (from ParseAllowedHosts).
func newHostPolicy(listenHost string, allowed []string) hostPolicy {
	p := hostPolicy{names: map[string]bool{}, addrs: map[netip.Addr]bool{}}
	add := func(host string) {
		name, addr, ok := splitHost(host)
		switch {
		case !ok:
		case addr.IsValid():
			p.addrs[addr] = true
		case name != "":
			p.names[strings.ToLower(name)] = true
		}
	}
	add(listenHost)
	for _, e := range allowed {
		switch {
		case e == "*":
			p.any = true
		case strings.HasPrefix(e, "."):
			if name, addr, ok := splitHost(e[1:]); ok && !addr.IsValid() && name != "" {
				p.suffixes = append(p.suffixes, "."+strings.ToLower(name))
			}
		default:
			add(e)
		}
	}
	return p
}

// splitHost takes a Host header (or a configured entry) apart: the name
// without its port, brackets and trailing dot, and the address when it is
// one (IPv4-mapped IPv6 unmapped, zone dropped). ok is false for a malformed
// bracket. The name keeps its case.
func splitHost(host string) (name string, addr netip.Addr, ok bool) {
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", netip.Addr{}, false
		}
		if rest := host[end+1:]; rest != "" && rest[0] != ':' {
			return "", netip.Addr{}, false
		}
		host = host[1:end]
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		host = host[:i] // name:port; a bare IPv6 address (several colons) stays whole
	}
	host = strings.TrimSuffix(host, ".")
	if a, err := netip.ParseAddr(host); err == nil {
		return host, a.Unmap().WithZone(""), true
	}
	return host, netip.Addr{}, true
}

// allows reports whether the server answers a request with this Host header.
func (p hostPolicy) allows(hostHeader string) bool {
	if p.any {
		return true
	}
	name, addr, ok := splitHost(hostHeader)
	switch {
	case !ok || name == "":
		return false
	case addr.IsValid():
		return addr.IsLoopback() || p.addrs[addr]
	case strings.EqualFold(name, "localhost"):
		return true
	}
	if hasUpper(name) {
		name = strings.ToLower(name) // allocates; browsers send lower case
	}
	if p.names[name] {
		return true
	}
	for _, s := range p.suffixes {
		if name == s[1:] || strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// hostCheck refuses requests whose Host p does not allow (421), except
// GET /health. The first refusal is logged at warn level with the host name
// (to help an operator behind a proxy), later ones at debug level.
func hostCheck(p hostPolicy, next http.Handler, log *slog.Logger) http.Handler {
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.allows(r.Host) || r.URL.Path == "/health" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		logged := false
		once.Do(func() {
			logged = true
			log.WarnContext(r.Context(), "refused a request for a host name that is not allowed (set KEYFLOW_ALLOWED_HOSTS to allow it)",
				"host", fmt.Sprintf("%.100q", r.Host), "path", r.URL.Path)
		})
		if !logged {
			log.DebugContext(r.Context(), "refused a request for a host name that is not allowed", "host", fmt.Sprintf("%.100q", r.Host))
		}
		httpjson.Detail(w, http.StatusMisdirectedRequest, msgHostNotAllowed)
	})
}
