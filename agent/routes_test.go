package agent

// The route table (api.go) is the one list of the API's paths: these tests
// hold docs/API.md, the JupyterLab extension's proxy (handlers.py) and its
// panel (src/*.ts) to it, and fail naming the path that drifted.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/agent/client"
)

// goRoutes is the route table as "METHOD /pattern" strings.
func goRoutes() map[string]route {
	m := map[string]route{}
	for _, r := range routes {
		m[r.method+" "+r.pattern] = r
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", rel))
	if err != nil {
		t.Fatalf("%s: %v (the route checks read it; update routes_test.go if it moved)", rel, err)
	}
	return string(b)
}

// TestRoutesClientMatchServer: each route of the table is one of the
// client's Route values (the ones the Go client calls).
func TestRoutesClientMatchServer(t *testing.T) {
	cl := map[string]bool{}
	for _, r := range []client.Route{client.RouteMetrics, client.RouteConnectors, client.RouteConnector,
		client.RouteActivate, client.RouteDeactivate, client.RouteFiles, client.RouteRefresh, client.RouteTest,
		client.RouteEvents, client.RouteHealth, client.RouteMetricsV1, client.RoutePubKey} {
		cl[r.String()] = true
	}
	srv := goRoutes()
	for k := range srv {
		if !cl[k] {
			t.Errorf("the server answers %s, which is not a client.Route", k)
		}
	}
	for k := range cl {
		if _, ok := srv[k]; !ok {
			t.Errorf("client.Route %s is not in the server's route table (agent/api.go)", k)
		}
	}
	if got := client.RouteFiles.Path("a b/c"); got != "/v1/connectors/a%20b%2Fc/files" {
		t.Errorf("RouteFiles.Path = %q", got)
	}
	if got := client.RouteHealth.Path("x"); got != "/v1/health" {
		t.Errorf("RouteHealth.Path = %q", got)
	}
}

// methodPath finds "METHOD /path" mentions (in backquotes in markdown).
var methodPath = regexp.MustCompile("`(GET|HEAD|POST|PUT|PATCH|DELETE) (/[^`\\s?]*)[^`]*`")

// TestRoutesDocumented: every route has a "### `METHOD /path`" section in
// docs/API.md, every section is a route, and every "METHOD /path" the page
// mentions anywhere is a route.
func TestRoutesDocumented(t *testing.T) {
	doc := readRepoFile(t, "docs/API.md")
	srv := goRoutes()
	sections := map[string]int{}
	for i, line := range strings.Split(doc, "\n") {
		for _, m := range methodPath.FindAllStringSubmatch(line, -1) {
			k := m[1] + " " + m[2]
			if strings.HasPrefix(line, "### ") {
				sections[k] = i + 1
			}
			if _, ok := srv[k]; !ok {
				t.Errorf("docs/API.md:%d mentions %s, which is not a route of the daemon (agent/api.go); "+
					"fix the page or the route table", i+1, k)
			}
		}
	}
	for _, k := range sortedKeys(srv) {
		if _, ok := sections[k]; !ok {
			t.Errorf("route %s has no section in docs/API.md: add a \"### `%s`\" heading (or name it in another route's heading) under ## Routes", k, k)
		}
	}
	if len(sections) == 0 {
		t.Fatal("no \"### `METHOD /path`\" heading found in docs/API.md: the page's layout changed; update this test")
	}
}

// pyAllowed reads handlers.py's ALLOWED table: method -> the paths its
// patterns admit, written like the Go table ("/v1/connectors/{id}/files").
// A pattern is a literal with {_ID} for an id and groups of literal
// alternatives "(a|b)"; anything else fails the test (it cannot be checked).
func pyAllowed(t *testing.T, src string) map[string]int {
	t.Helper()
	start := strings.Index(src, "\nALLOWED = {")
	if start < 0 {
		t.Fatal("jupyter-ext/jupyterlab_s3mounts/handlers.py: no `ALLOWED = {` table; update routes_test.go with its new shape")
	}
	end := strings.Index(src[start:], "\n}\n")
	if end < 0 {
		t.Fatal("handlers.py: ALLOWED = { … } does not end with a line `}`")
	}
	line0 := strings.Count(src[:start+1], "\n") + 1
	body := src[start : start+end]
	method := regexp.MustCompile(`^\s*"([A-Z]+)":\s*\[`)
	pat := regexp.MustCompile(`re\.compile\(r?f?r?"([^"]*)"\)`)
	out := map[string]int{}
	cur := ""
	for i, line := range strings.Split(body, "\n") {
		if m := method.FindStringSubmatch(line); m != nil {
			cur = m[1]
		}
		for _, m := range pat.FindAllStringSubmatch(line, -1) {
			if cur == "" {
				t.Fatalf("handlers.py:%d: a pattern outside a method's list", line0+i)
			}
			for _, p := range expandPyPattern(t, m[1], line0+i) {
				out[cur+" "+p] = line0 + i
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("handlers.py: ALLOWED holds no re.compile(…) pattern this test can read")
	}
	return out
}

var altGroup = regexp.MustCompile(`\(([A-Za-z0-9_./-]+(?:\|[A-Za-z0-9_./-]+)*)\)`)

func expandPyPattern(t *testing.T, p string, line int) []string {
	t.Helper()
	p = strings.ReplaceAll(p, "{_ID}", "{id}")
	if m := altGroup.FindStringSubmatchIndex(p); m != nil {
		var out []string
		for _, alt := range strings.Split(p[m[2]:m[3]], "|") {
			out = append(out, expandPyPattern(t, p[:m[0]]+alt+p[m[1]:], line)...)
		}
		return out
	}
	if strings.ContainsAny(strings.ReplaceAll(p, "{id}", ""), `\[]()|*+?^${}`) {
		t.Fatalf("handlers.py:%d: pattern %q is more than literals, {_ID} and (a|b) groups; "+
			"write it so, or teach routes_test.go to read it", line, p)
	}
	return []string{"/" + p}
}

// tsCall is one daemon path the panel's TypeScript requests.
type tsCall struct {
	method, path string // path like the Go table's, "{id}" for an id; "*" a segment not known
	where        string // file:line
}

var (
	// a string or template literal that starts with "api/" (relative to
	// the server extension's /s3mounts/ base)
	tsLiteral = regexp.MustCompile("['`](api/[^'`]*)['`]")
	tsSubst   = regexp.MustCompile(`^\$\{(.*)\}$`)
	tsMethod  = regexp.MustCompile(`method:\s*['"]([A-Z]+)['"]`)
)

// tsCalls finds the daemon paths requested by jupyter-ext/src/*.ts (tests
// excluded). A segment `${encodeURIComponent(…)}` is an id; a segment
// `${name}` where the file declares `name: 'a' | 'b'` is each of them; any
// other substitution is "*". The method is the `method: 'X'` given in the
// same call or statement, else GET.
func tsCalls(t *testing.T) []tsCall {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "jupyter-ext", "src", "*.ts"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no jupyter-ext/src/*.ts found (%v): update routes_test.go if the panel moved", err)
	}
	var out []tsCall
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		rel, _ := filepath.Rel("..", f)
		for _, m := range tsLiteral.FindAllStringSubmatchIndex(src, -1) {
			lit := src[m[2]:m[3]]
			where := fmt.Sprintf("%s:%d", rel, strings.Count(src[:m[0]], "\n")+1)
			method := "GET"
			if mm := tsMethod.FindStringSubmatch(restOfCall(src[m[1]:])); mm != nil {
				method = mm[1]
			}
			p, _, _ := strings.Cut(lit, "?")
			paths := []string{""}
			for _, seg := range strings.Split(strings.TrimPrefix(p, "api/"), "/") {
				alts := []string{seg}
				if s := tsSubst.FindStringSubmatch(seg); s != nil {
					expr := strings.TrimSpace(s[1])
					switch {
					case strings.HasPrefix(expr, "encodeURIComponent("):
						alts = []string{"{id}"}
					case tsUnion(src, expr) != nil:
						alts = tsUnion(src, expr)
					default:
						alts = []string{"*"}
					}
				} else if strings.Contains(seg, "${") {
					alts = []string{"*"}
				}
				var next []string
				for _, pre := range paths {
					for _, a := range alts {
						next = append(next, pre+"/"+a)
					}
				}
				paths = next
			}
			for _, p := range paths {
				out = append(out, tsCall{method, p, where})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no 'api/…' path found in jupyter-ext/src/*.ts: the panel's way of naming paths changed; update routes_test.go")
	}
	return out
}

// restOfCall is src up to the end of the call or statement the literal
// at its start is in: a ')' or ';' at the literal's own depth.
func restOfCall(src string) string {
	depth := 0
	for i, c := range src {
		switch c {
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			if depth == 0 {
				return src[:i]
			}
			depth--
		case ';':
			if depth == 0 {
				return src[:i]
			}
		}
	}
	return src
}

// tsUnion returns the literals of `name: 'a' | 'b'` declared in src.
func tsUnion(src, name string) []string {
	if !regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`).MatchString(name) {
		return nil
	}
	decl := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\s*:\s*((?:'[^']*'\s*\|\s*)*'[^']*')`)
	m := decl.FindStringSubmatch(src)
	if m == nil {
		return nil
	}
	var out []string
	for _, s := range strings.Split(m[1], "|") {
		out = append(out, strings.Trim(strings.TrimSpace(s), "'"))
	}
	return out
}

// matchesRoute reports whether a path with "*" segments matches key
// ("METHOD /pattern").
func matchesRoute(method, path, key string) bool {
	m, pat, _ := strings.Cut(key, " ")
	if m != method {
		return false
	}
	ps, rs := strings.Split(path, "/"), strings.Split(pat, "/")
	if len(ps) != len(rs) {
		return false
	}
	for i := range ps {
		if ps[i] != "*" && ps[i] != rs[i] {
			return false
		}
	}
	return true
}

// notProxied are the daemon's routes the JupyterLab extension must not
// pass: metrics are for the node's admins, not for notebook users.
var notProxied = []string{"GET /metrics", "GET /v1/metrics"}

// TestRoutesPanel: the JupyterLab server extension lets through exactly the
// daemon's routes (less notProxied), streams only the streamed ones, and
// every path the panel requests is a daemon route that the extension
// lets through.
func TestRoutesPanel(t *testing.T) {
	srv := goRoutes()
	py := readRepoFile(t, "jupyter-ext/jupyterlab_s3mounts/handlers.py")
	allowed := pyAllowed(t, py)
	for _, k := range sortedKeys(allowed) {
		if _, ok := srv[k]; !ok {
			t.Errorf("jupyter-ext/jupyterlab_s3mounts/handlers.py:%d lets through %s, which is not a route of the daemon (agent/api.go)", allowed[k], k)
		}
		if slices.Contains(notProxied, k) {
			t.Errorf("handlers.py:%d lets through %s, which is for the node's admins only", allowed[k], k)
		}
	}
	for _, k := range sortedKeys(srv) {
		if _, ok := allowed[k]; !ok && !slices.Contains(notProxied, k) {
			t.Errorf("the daemon's route %s is missing from handlers.py's ALLOWED: add it, or list it in notProxied here with the reason", k)
		}
	}
	// STREAMED = {"v1/events"}: the stream routes, and only them.
	sm := regexp.MustCompile(`(?m)^STREAMED = \{([^}]*)\}`).FindStringSubmatch(py)
	if sm == nil {
		t.Fatal("handlers.py: no `STREAMED = {…}` line; update routes_test.go with its new shape")
	}
	streamed := map[string]bool{}
	for _, s := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(sm[1], -1) {
		streamed["/"+s[1]] = true
	}
	for _, r := range routes {
		if r.stream != streamed[r.pattern] {
			t.Errorf("handlers.py STREAMED has %s = %v, the daemon's table says stream = %v", r.pattern, streamed[r.pattern], r.stream)
		}
		delete(streamed, r.pattern)
	}
	for p := range streamed {
		t.Errorf("handlers.py STREAMED names %s, which is not a route of the daemon", p)
	}

	calls := tsCalls(t)
	for _, c := range calls {
		var inGo, inPy bool
		for k := range srv {
			inGo = inGo || matchesRoute(c.method, c.path, k)
		}
		for k := range allowed {
			inPy = inPy || matchesRoute(c.method, c.path, k)
		}
		switch {
		case !inGo:
			t.Errorf("%s: the panel requests %s %s, which is not a route of the daemon (agent/api.go)", c.where, c.method, c.path)
		case !inPy:
			t.Errorf("%s: the panel requests %s %s, which handlers.py's ALLOWED does not let through", c.where, c.method, c.path)
		}
	}
	if testing.Verbose() {
		for _, c := range calls {
			t.Logf("panel: %s %s (%s)", c.method, c.path, c.where)
		}
		t.Logf("proxy: %s", strings.Join(sortedKeys(allowed), ", "))
	}
}
