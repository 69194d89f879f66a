package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxConnectorSize bounds what is read from a connector file.
const maxConnectorSize = 1 << 20

var (
	reMountName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	reID        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	reRegion    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	reSecret    = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,252}$`)
	reSession   = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
)

// IsConnectorFile reports whether a directory entry name is a connector
// file: "*.toml", not a dotfile (covers "..data" and editors' ".x.swp"),
// not "*~", "*.swp", "*.tmp".
func IsConnectorFile(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsRune(name, '/') {
		return false
	}
	if strings.HasSuffix(name, "~") || strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, ".tmp") {
		return false
	}
	return strings.HasSuffix(name, ".toml") && len(name) > len(".toml")
}

// ConnectorID is the id of a connector file: its name without ".toml".
func ConnectorID(name string) string {
	return strings.TrimSuffix(filepath.Base(name), ".toml")
}

// LoadConnector reads, decodes (strictly: unknown keys are errors) and
// validates one connector file, refusing a file root does not control
// (not regular, not owned by root, writable by group or others, or a
// symlink out of its directory that a.ConnectorsFollowSymlinks does not
// allow); it never blocks on a fifo or a device. It applies the agent's
// defaults (owner, group, modes) and resolves owner/group names to ids. It
// does not read the secret.
// Errors are *FileError (several may be joined with errors.Join).
func LoadConnector(path string, a *Agent) (*Connector, error) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	data, info, _, err := readTrusted(path, connectorTrust(filepath.Dir(path), a), maxConnectorSize)
	if err != nil {
		return nil, &FileError{File: path, Msg: strings.TrimPrefix(err.Error(), path+" ")}
	}
	return ParseConnector(path, data, info, a)
}

// ParseConnector is LoadConnector on bytes already read; name is used in
// errors and for the id. info may be nil (then the "readable by others"
// rule for inline secrets is not checked). It is the fuzz target's entry.
func ParseConnector(name string, data []byte, info os.FileInfo, a *Agent) (*Connector, error) {
	if a == nil {
		a = DefaultAgent()
	}
	c := defaultConnector(a)
	c.ID, c.File = ConnectorID(name), name
	d := &doc{file: name, src: string(data)}
	if len(data) > maxConnectorSize {
		d.fail(0, "", "is %d bytes: a connector file must be under 1 MiB", len(data))
		return nil, d.err()
	}
	if !reID.MatchString(c.ID) {
		d.fail(0, "", "the file name gives the connector id %q: rename the file to <id>.toml where id has only letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)", c.ID)
	}
	if !d.decode(connectorKeys) {
		return nil, d.err()
	}
	d.unknownKeys(connectorKeys)
	d.apply(ConnectorKeys, c, "")
	c.Credentials = d.credentials(info)
	c.Access = d.access()

	if err := d.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func oneOf(d *doc, key, s string, allowed ...string) bool {
	if contains(allowed, s) {
		return true
	}
	d.failKey(key, "is not allowed: use %s", quoteList(allowed))
	return false
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// datetime accepts a TOML offset date-time (or an RFC 3339 string) and
// returns it in UTC.
func (d *doc) datetime(key string, v val) (time.Time, bool) {
	if !v.set {
		return time.Time{}, false
	}
	switch t := v.v.(type) {
	case time.Time:
		switch t.Location().String() {
		case "datetime-local", "date-local", "time-local":
			d.failKey(key, "needs a time zone: write a UTC date-time such as 2022-07-18T14:23:00Z")
			return time.Time{}, false
		}
		return t.UTC(), true
	case string:
		pt, err := time.Parse(time.RFC3339, t)
		if err != nil {
			d.failKey(key, "is not a date-time: write 2022-07-18T14:23:00Z (no quotes needed)")
			return time.Time{}, false
		}
		return pt.UTC(), true
	}
	d.failKey(key, "must be a date-time such as 2022-07-18T14:23:00Z, not %s", tomlType(v.v))
	return time.Time{}, false
}

// principal resolves owner (or group, when isGroup) to an id: a name known
// to this node, a numeric id as a string, or an integer. ok is false when
// the key is absent, empty or wrong (the agent's default stays).
func (d *doc) principal(key string, v val, isGroup bool) (string, uint32, bool) {
	if !v.set {
		return "", 0, false
	}
	what, lookup := "user", "uid"
	if isGroup {
		what, lookup = "group", "gid"
	}
	var s string
	switch x := v.v.(type) {
	case int64:
		if x < 0 || x >= 1<<32-1 {
			d.failKey(key, "%d is not a valid %s", x, lookup)
			return "", 0, false
		}
		return strconv.FormatInt(x, 10), uint32(x), true
	case string:
		s = strings.TrimSpace(x)
	default:
		d.failKey(key, "must be a %s name in quotes or a numeric %s, not %s", what, lookup, tomlType(v.v))
		return "", 0, false
	}
	if s == "" {
		return "", 0, false
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil && n != 1<<32-1 {
		return s, uint32(n), true
	}
	if !validPrincipalName(s) {
		d.failKey(key, "is not a %s name: give a name without spaces, colons or commas, or a numeric %s", what, lookup)
		return "", 0, false
	}
	var idStr string
	var err error
	if isGroup {
		var g *user.Group
		if g, err = user.LookupGroup(s); err == nil {
			idStr = g.Gid
		}
	} else {
		var u *user.User
		if u, err = user.Lookup(s); err == nil {
			idStr = u.Uid
		}
	}
	if err != nil {
		d.failKey(key, "names no %s of this node: create it, or give a numeric %s", what, lookup)
		return "", 0, false
	}
	n, err := strconv.ParseUint(idStr, 10, 32)
	if err != nil {
		d.failKey(key, "names a %s whose %s is not numeric: give a numeric %s", what, lookup, lookup)
		return "", 0, false
	}
	return s, uint32(n), true
}

// checkEndpoint validates an http(s) URL and returns it normalised. Errors
// never echo the URL, which might hold a password.
func checkEndpoint(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New(`must not be empty: write the S3 service's URL, e.g. "https://storage.yandexcloud.net"`)
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return "", errors.New(`is not a URL: write e.g. "https://storage.yandexcloud.net" or "http://127.0.0.1:9000"`)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New(`must start with https:// (or http://), e.g. "https://storage.yandexcloud.net"`)
	}
	if u.User != nil {
		return "", errors.New("must not hold a user name or password: put credentials in [credentials]")
	}
	if u.Hostname() == "" {
		return "", errors.New(`has no host: write e.g. "https://s3.example.com"`)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", errors.New("has an invalid port: use 1 to 65535")
		}
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "#") {
		return "", errors.New("must not have a query or fragment: give only scheme, host, port (and path)")
	}
	if u.Path == "/" {
		u.Path = ""
	}
	return u.String(), nil
}

// checkBucket applies S3's bucket naming rules (dots allowed).
func checkBucket(s string) error {
	if len(s) < 3 || len(s) > 63 {
		return errors.New("must be 3 to 63 characters long")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return errors.New("may hold only lowercase letters, digits, '.' and '-'")
		}
	}
	first, last := s[0], s[len(s)-1]
	if !isAlnum(first) || !isAlnum(last) {
		return errors.New("must start and end with a lowercase letter or a digit")
	}
	if strings.Contains(s, "..") {
		return errors.New(`must not contain ".."`)
	}
	if strings.Contains(s, ".-") || strings.Contains(s, "-.") {
		return errors.New(`must not have '-' next to '.' (each dot-separated part starts and ends with a letter or digit)`)
	}
	if ip := net.ParseIP(s); ip != nil {
		return errors.New("must not look like an IP address")
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// normalizePrefix checks a key prefix and makes it end with "/".
func normalizePrefix(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if strings.HasPrefix(s, "/") {
		return "", errors.New(`must not start with "/": the prefix is relative to the bucket, e.g. "team-a/"`)
	}
	if hasControl(s) {
		return "", errors.New("must not contain control characters")
	}
	if len(s) > 900 {
		return "", errors.New("is too long: S3 keys are at most 1024 bytes")
	}
	if strings.Contains(s, "//") {
		return "", errors.New(`must not contain "//": empty path segments cannot be mounted`)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(s, "/"), "/") {
		if seg == "." || seg == ".." {
			return "", errors.New(`must not contain "." or ".." segments`)
		}
	}
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s, nil
}

// Credential sources of the secret key, in the order errors name them.
var secretSources = []string{"secret_name", "secret_access_key_file", "secret_access_key_encrypted", "secret_access_key"}

func (d *doc) credentials(info os.FileInfo) Credentials {
	var cs Credentials
	// Values of these keys are never echoed in errors.
	get := func(key string) string {
		s, _ := d.str("credentials."+key, d.get("credentials."+key))
		return s
	}
	cs.AccessKeyID = strings.TrimSpace(get("access_key_id"))
	cs.SecretName = strings.TrimSpace(get("secret_name"))
	cs.SecretAccessKeyFile = strings.TrimSpace(get("secret_access_key_file"))
	cs.SecretAccessKeyEncrypted = get("secret_access_key_encrypted")
	cs.SecretAccessKey = Secret(get("secret_access_key"))
	cs.SessionToken = Secret(get("session_token"))
	cs.Profile = strings.TrimSpace(get("profile"))
	cs.RoleARN = strings.TrimSpace(get("role_arn"))
	cs.RoleSessionName = strings.TrimSpace(get("role_session_name"))
	cs.ExternalID = get("external_id")
	cs.SourceIdentity = get("source_identity")
	cs.WebIdentityTokenFile = strings.TrimSpace(get("web_identity_token_file"))
	cs.Anonymous, _ = d.boolean("credentials.anonymous", d.get("credentials.anonymous"))

	k := func(key string) string { return "credentials." + key }
	set := map[string]bool{
		"access_key_id": cs.AccessKeyID != "", "secret_name": cs.SecretName != "",
		"secret_access_key_file": cs.SecretAccessKeyFile != "", "secret_access_key_encrypted": cs.SecretAccessKeyEncrypted != "",
		"secret_access_key": cs.SecretAccessKey != "", "session_token": cs.SessionToken != "",
		"profile": cs.Profile != "", "role_arn": cs.RoleARN != "", "role_session_name": cs.RoleSessionName != "",
		"external_id": cs.ExternalID != "", "source_identity": cs.SourceIdentity != "",
		"web_identity_token_file": cs.WebIdentityTokenFile != "", "anonymous": cs.Anonymous,
	}
	var sources []string
	for _, s := range secretSources {
		if set[s] {
			sources = append(sources, s)
		}
	}

	// Syntax of each key.
	if set["access_key_id"] && (hasControl(cs.AccessKeyID) || strings.ContainsAny(cs.AccessKeyID, " ")) {
		d.failKey(k("access_key_id"), "must be one word without spaces: copy the access key id again")
	}
	if set["secret_name"] && !reSecret.MatchString(cs.SecretName) {
		d.failKey(k("secret_name"), "must be a file name in secrets_dir: letters, digits, '.', '_' and '-', not starting with '.'")
	}
	if set["secret_access_key_file"] && !filepath.IsAbs(cs.SecretAccessKeyFile) {
		d.failKey(k("secret_access_key_file"), "must be an absolute path, e.g. \"/srv/keys/datasets\"")
	}
	if set["secret_access_key_encrypted"] && !looksAge([]byte(cs.SecretAccessKeyEncrypted)) {
		d.failKey(k("secret_access_key_encrypted"), "is not an age message: paste the whole output of `s3mountctl encrypt`, from -----BEGIN AGE ENCRYPTED FILE----- to -----END AGE ENCRYPTED FILE-----, in a \"\"\" string")
	}
	if sk := strings.TrimSpace(cs.SecretAccessKey.Reveal()); set["secret_access_key"] && (hasControl(sk) || sk == "") {
		d.failKey(k("secret_access_key"), "must be one line: copy the secret key again (its value is not shown here)")
	}
	if set["secret_access_key"] && info != nil && info.Mode().Perm()&0o044 != 0 {
		d.failKey(k("secret_access_key"), "a plain secret key is refused because this file is readable by group or others (mode %04o): chmod 600 %s, or put the key in a secret file and use secret_name", info.Mode().Perm(), d.file)
	}
	if set["role_arn"] && !strings.HasPrefix(cs.RoleARN, "arn:") {
		d.failKey(k("role_arn"), `must be an ARN such as "arn:aws:iam::123456789012:role/reader"`)
	}
	if set["role_session_name"] && !reSession.MatchString(cs.RoleSessionName) {
		d.failKey(k("role_session_name"), "must be 2 to 64 letters, digits or +=,.@_-")
	}
	if set["web_identity_token_file"] && !filepath.IsAbs(cs.WebIdentityTokenFile) {
		d.failKey(k("web_identity_token_file"), "must be an absolute path")
	}
	if set["profile"] && (hasControl(cs.Profile) || strings.ContainsAny(cs.Profile, " []")) {
		d.failKey(k("profile"), "is not a profile name of the shared AWS config files")
	}

	// Combinations.
	conflict := func(a, b string) {
		if set[a] && set[b] {
			d.failKey(k(b), "conflicts with %s: %s", a, conflictHint(a, b))
		}
	}
	if len(sources) > 1 {
		d.failKey(k(sources[1]), "conflicts with %s: give exactly one source of the secret key (%s)", strings.Join(without(sources, sources[1]), " and "), strings.Join(secretSources, ", "))
	}
	if len(sources) > 0 && !set["access_key_id"] {
		d.failKey(k(sources[0]), "needs access_key_id: add access_key_id = \"…\" next to it")
	}
	if set["access_key_id"] && len(sources) == 0 {
		d.failKey(k("access_key_id"), "needs the secret key: add one of secret_name (a file in secrets_dir), secret_access_key_file, secret_access_key_encrypted or secret_access_key")
	}
	if set["session_token"] && !set["access_key_id"] {
		d.failKey(k("session_token"), "needs access_key_id and a secret key: a session token belongs to temporary access keys")
	}
	if set["anonymous"] {
		for _, o := range []string{"access_key_id", "secret_name", "secret_access_key_file", "secret_access_key_encrypted", "secret_access_key", "session_token", "profile", "role_arn", "web_identity_token_file"} {
			conflict("anonymous", o)
		}
	}
	conflict("access_key_id", "profile")
	conflict("access_key_id", "web_identity_token_file")
	conflict("profile", "web_identity_token_file")
	if set["web_identity_token_file"] && !set["role_arn"] {
		d.failKey(k("web_identity_token_file"), "needs role_arn: the token is exchanged for the credentials of that role")
	}
	for _, o := range []string{"role_session_name", "external_id", "source_identity"} {
		if set[o] && !set["role_arn"] {
			d.failKey(k(o), "only applies with role_arn: add role_arn or remove %s", o)
		}
	}
	if !set["access_key_id"] && !set["profile"] && !set["web_identity_token_file"] && !set["anonymous"] && len(sources) == 0 {
		d.fail(d.loc.line("credentials"), "credentials", "no credentials: set access_key_id with a secret (e.g. secret_name), or profile, or web_identity_token_file with role_arn, or anonymous = true for a public bucket")
	}
	return cs
}

func conflictHint(a, b string) string {
	switch a {
	case "anonymous":
		return "anonymous access signs nothing; remove " + b + " or anonymous"
	case "access_key_id":
		return "use either an access key or " + b + ", not both"
	}
	return "use one of them"
}

func without(l []string, s string) []string {
	var out []string
	for _, x := range l {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// access validates [[access.allow]]. nil means no policy.
func (d *doc) access() []AccessRule {
	if !d.md.IsDefined("access", "allow") {
		return nil
	}
	rules, _ := rulesOf(d.get("access.allow").v)
	if len(rules) == 0 {
		// Ambiguous: "deny everyone" or "no policy"? Make the writer say.
		d.failKey("access.allow", "is empty: remove it to let the roles alone decide, or add [[access.allow]] rules naming users or groups")
		return nil
	}
	headers := d.loc.found["access.allow"]
	out := make([]AccessRule, 0, len(rules))
	for i, m := range rules {
		r := func(key string) val {
			x, ok := m[key]
			return val{v: x, set: ok}
		}
		from, to := 0, 0
		if i < len(headers) {
			from = headers[i]
		}
		if i+1 < len(headers) {
			to = headers[i+1]
		}
		fail := func(key, format string, args ...any) {
			full := "access.allow." + key
			line := d.loc.lineIn(full, from, to)
			if line == 0 {
				line = from
			}
			d.fail(line, full, "(rule %d) "+format, append([]any{i + 1}, args...)...)
		}
		var rule AccessRule
		for _, f := range []struct {
			key string
			v   val
			dst *[]string
		}{{"users", r("users"), &rule.Users}, {"groups", r("groups"), &rule.Groups}} {
			if !f.v.set {
				continue
			}
			list, ok := f.v.v.([]any)
			if !ok {
				fail(f.key, `must be an array of names, e.g. ["alice"], not %s`, tomlType(f.v.v))
				continue
			}
			for j, e := range list {
				s, ok := e.(string)
				if !ok || !validPrincipalName(s) {
					fail(f.key, "element %d is not a name: give %s names in quotes", j+1, strings.TrimSuffix(f.key, "s"))
					continue
				}
				*f.dst = append(*f.dst, s)
			}
		}
		if len(rule.Users) == 0 && len(rule.Groups) == 0 {
			line := from
			if line == 0 {
				line = d.loc.lineFor("access.allow")
			}
			d.fail(line, "access.allow", "(rule %d) names no users and no groups: add users = [\"…\"] or groups = [\"…\"], or remove the rule", i+1)
		}
		if actions := r("actions"); actions.set {
			list, ok := actions.v.([]any)
			if !ok {
				fail("actions", `must be an array, e.g. ["view", "browse"], not %s`, tomlType(actions.v))
			}
			for j, e := range list {
				s, _ := e.(string)
				if !contains(actionNames(), s) {
					fail("actions", "element %d is not an action: use %s", j+1, quoteList(actionNames()))
					continue
				}
				rule.Actions = append(rule.Actions, Action(s))
			}
			if ok && len(list) == 0 {
				fail("actions", "is empty: a rule that allows nothing does nothing; list actions or remove the key for all five")
			}
		} else {
			rule.Actions = append([]Action(nil), AllActions...)
		}
		out = append(out, rule)
	}
	return out
}

func actionNames() []string {
	n := make([]string, len(AllActions))
	for i, a := range AllActions {
		n[i] = string(a)
	}
	return n
}

// DuplicateMountNames returns, for every connector that claims a mount_name
// already claimed by a connector whose file name sorts earlier, an error
// naming both files. Keys are connector ids.
func DuplicateMountNames(cs []*Connector) map[string]error {
	sorted := make([]*Connector, 0, len(cs))
	for _, c := range cs {
		if c != nil {
			sorted = append(sorted, c)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		bi, bj := filepath.Base(sorted[i].File), filepath.Base(sorted[j].File)
		if bi != bj {
			return bi < bj
		}
		return sorted[i].ID < sorted[j].ID
	})
	first := map[string]*Connector{}
	out := map[string]error{}
	for _, c := range sorted {
		if c.MountName == "" {
			continue
		}
		prev, ok := first[c.MountName]
		if !ok {
			first[c.MountName] = c
			continue
		}
		out[c.ID] = &FileError{File: c.File, Line: lineOfKeyInFile(c.File, "mount_name"), Key: "mount_name",
			Msg: fmt.Sprintf("%q is already the mount_name of %s: give this connector another mount_name", c.MountName, prev.File)}
	}
	return out
}

// lineOfKeyInFile finds a top-level key's line by re-reading the file
// (best effort: 0 when it cannot).
func lineOfKeyInFile(path, key string) int {
	data, _, _, err := readTrusted(path, connectorTrust(filepath.Dir(path), nil), maxConnectorSize)
	if err != nil {
		return 0
	}
	for i, l := range scanLines(string(data)) {
		if l.header != nil {
			return 0 // top-level keys come before the first table
		}
		if contains(l.keys, key) {
			return i + 1
		}
	}
	return 0
}

// Warnings returns advice that is not an error, e.g. a connector with an
// access policy whose mount every user of the node can read.
func Warnings(c *Connector, a *Agent) []string {
	var w []string
	if c == nil {
		return nil
	}
	if c.Access != nil && (c.FileMode&0o004 != 0 || c.DirMode&0o005 != 0) {
		w = append(w, fmt.Sprintf("%s: has an access policy, but its mount is readable by every user of the node (file_mode %04o, dir_mode %04o): the policy limits the API, not the files; set file_mode = \"0640\" and dir_mode = \"0750\" with a group, or \"0600\"/\"0700\"",
			c.File, c.FileMode, c.DirMode))
	}
	if c.Addressing == "virtual" && strings.Contains(c.Bucket, ".") && strings.HasPrefix(c.Endpoint, "https://") {
		w = append(w, fmt.Sprintf("%s: addressing = \"virtual\" with the dotted bucket %q fails TLS certificate checks on most endpoints: use \"auto\" or \"path\"", c.File, c.Bucket))
	}
	if strings.HasPrefix(c.Endpoint, "http://") && c.Credentials.AccessKeyID != "" {
		if u, err := url.Parse(c.Endpoint); err == nil {
			ip := net.ParseIP(u.Hostname())
			if !(u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()) {
				w = append(w, fmt.Sprintf("%s: endpoint uses plain http: data and signed requests cross the network unencrypted; use https", c.File))
			}
		}
	}
	if c.Credentials.SecretAccessKey != "" {
		w = append(w, fmt.Sprintf("%s: holds a plain secret_access_key: prefer secret_name (a root-only file in %s) or secret_access_key_encrypted (s3mountctl encrypt)", c.File, agentOrDefault(a).SecretsDir))
	}
	return w
}

func agentOrDefault(a *Agent) *Agent {
	if a == nil {
		return DefaultAgent()
	}
	return a
}
