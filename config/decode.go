package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// val is one TOML value as written, whatever its type, so that a wrong
// type is reported by validation (with file, line and key, and without the
// value when it may be a secret) instead of stopping the decoder.
type val struct {
	v   any
	set bool
}

// doc is one file being decoded and validated; it collects every error.
type doc struct {
	file string
	src  string
	loc  *keyLocator
	md   toml.MetaData
	tree map[string]any // the decoded document
	errs []error
}

func (d *doc) fail(line int, key, format string, args ...any) {
	d.errs = append(d.errs, &FileError{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// failKey reports an error at key's line.
func (d *doc) failKey(key, format string, args ...any) {
	d.fail(d.loc.lineFor(key), key, format, args...)
}

func (d *doc) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	if len(d.errs) == 1 {
		return d.errs[0]
	}
	return errors.Join(d.errs...)
}

// decode parses d.src. It returns false when the document cannot be used
// at all (syntax error, or a table written as a value); the error is
// already recorded. Its messages never quote the file: the file may not be
// a connector at all (a credentials file symlinked or copied by mistake),
// so only the line and, when it is one the format knows, the key are named.
func (d *doc) decode(ks keySpec) bool {
	// Editors on Windows may start a file with a byte order mark.
	d.src = strings.TrimPrefix(d.src, "\ufeff")
	d.tree = map[string]any{}
	md, err := toml.Decode(d.src, &d.tree)
	d.md = md
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			d.fail(pe.Position.Line, ks.known(pe.LastKey), "%s", syntaxMessage(pe.Message))
			return false
		}
		d.fail(0, "", "%s", tableTypeMessage(""))
		return false
	}
	d.loc = newKeyLocator(d.src)
	d.loc.locate(md.Keys())
	// A table written as a value (cache = "x" where [cache] belongs), or
	// the other way round for the array of tables access.allow.
	tables := make([]string, 0, len(ks.tables))
	for t := range ks.tables {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		v := d.get(t)
		if !v.set {
			continue
		}
		ok := false
		if t == "access.allow" {
			_, ok = rulesOf(v.v)
		} else {
			_, ok = v.v.(map[string]any)
		}
		if !ok {
			d.failKey(t, "%s", tableTypeMessage(t))
			return false
		}
	}
	return true
}

// rulesOf returns an array of tables (as TOML decodes [[x]] or [{…}, …]).
func rulesOf(v any) ([]map[string]any, bool) {
	switch x := v.(type) {
	case []map[string]any:
		return x, true
	case []any:
		out := make([]map[string]any, 0, len(x))
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			out = append(out, m)
		}
		return out, true
	}
	return nil, false
}

// known returns key if the format knows it ("" otherwise): an error names
// a key of the file only when it cannot be a fragment of a value.
func (ks keySpec) known(key string) string {
	if ks.leaves[key] || ks.tables[key] {
		return key
	}
	if k, _, ok := strings.Cut(key, "."); ok && ks.anyLeafUnder[k] && showableKey(key) {
		return key
	}
	return ""
}

func tableTypeMessage(key string) string {
	switch key {
	case "access.allow":
		return "must be an array of tables: write each rule as [[access.allow]] followed by users, groups, actions"
	case "access", "cache", "credentials", "roles", "binaries":
		return fmt.Sprintf("must be a table: write [%s] on a line of its own and its keys below it", key)
	}
	return "a value has the wrong type here (a table where a value belongs, or the other way round): check the line against docs/CONFIG.md"
}

const (
	msgNumber = `this number is not valid: write digits only (e.g. 30), or put text in double quotes`
	msgKeyVal = "expected key = value: each line holds key = value, a [table] header or a # comment"
	msgArray  = "an array [ … ] or inline table { … } is malformed: separate the items with commas and close it"
	msgEscape = `a string holds an invalid escape: write \\ for a backslash, or use a 'literal string'`
	msgDate   = "this date-time is not valid: write e.g. 2022-07-18T14:23:00Z"
	msgQuote  = "a string is not closed: close the quote on the same line"
)

// syntaxMessages turns the TOML decoder's messages, which quote the text
// they stopped at, into fixed sentences that quote nothing. The first
// match (case-insensitive substring) wins.
var syntaxMessages = []struct{ match, msg string }{
	{"cannot contain newlines", `a string is not closed on its line: close the quote, or use """ … """ for text over several lines`},
	{`expected '"""'`, `a multi-line string is not closed: end it with """`},
	{`expected "'''"`, `a multi-line string is not closed: end it with '''`},
	{`expected '"'`, msgQuote},
	{`expected "'"`, msgQuote},
	{"expected value", `this is not a TOML value: put text in double quotes (key = "text"); numbers, true and false go without quotes`},
	{"expected key separator", msgKeyVal},
	{"expected '.' or '='", msgKeyVal},
	{"key name appears blank", "a key is missing before '=': write key = value"},
	{"keys cannot start", "a key must not start with '.': write key = value"},
	{"unexpected '='", "a key is missing before '=': write key = value"},
	{"unexpected '.'", "a key is malformed: write key = value (dotted keys as a.b = value)"},
	{"top-level item to end", "unexpected text after the value: write one key = value on each line (comments start with #)"},
	{"table array name", "the table header is malformed: write [[name]] on a line of its own"},
	{"table name", "the table header is malformed: write [name] or [[name]] on a line of its own"},
	{"comma", msgArray},
	{"terminator", msgArray},
	{"already been defined", "is defined twice: keep one definition"},
	{"already created", "is defined twice (as a table and as a value): keep one definition"},
	{"is not a table", "is a value, so it cannot have keys below it: remove one of the two"},
	{"hexadecimal digits", msgEscape},
	{"escape", msgEscape},
	{"utf-8", "the line is not valid UTF-8: save the file as UTF-8"},
	{"control character", "the line holds a control character: remove it"},
	{"datetime", msgDate},
	{"date", msgDate},
	{"float", msgNumber},
	{"integer", msgNumber},
	{"number", msgNumber},
	{"digit", msgNumber},
	{"unexpected eof", "the file ends inside a value or header: close the quote, bracket or brace"},
}

// syntaxMessage is the fixed sentence for a decoder message.
func syntaxMessage(m string) string {
	lm := strings.ToLower(m)
	for _, s := range syntaxMessages {
		if strings.Contains(lm, strings.ToLower(s.match)) {
			return s.msg + " (fix the TOML syntax)"
		}
	}
	return "this line is not valid TOML: check its quotes, brackets and = sign (fix the TOML syntax)"
}

// keySpec describes the keys a file may hold.
type keySpec struct {
	leaves map[string]bool // allowed leaf keys ("a", "t.b")
	tables map[string]bool // allowed tables ("t")
	// anyLeafUnder allows any leaf key directly under these tables (maps).
	anyLeafUnder map[string]bool
}

// unknownKeys reports every key the file holds that the format does not
// know, exactly (keys are case-sensitive).
func (d *doc) unknownKeys(ks keySpec) {
	reported := map[string]bool{}
	report := func(k toml.Key) {
		s := k.String()
		// Report only the outermost unknown key, and nothing under a known leaf.
		for i := 1; i < len(k); i++ {
			p := k[:i].String()
			if reported[p] || ks.leaves[p] {
				return
			}
		}
		if reported[s] {
			return
		}
		reported[s] = true
		msg := "unknown key: remove it or check its spelling"
		if s2 := closest(s, ks); s2 != "" {
			msg = fmt.Sprintf("unknown key: did you mean %q? (keys are case-sensitive)", s2)
		}
		shown := s
		if !showableKey(s) {
			shown = ""
			msg = "an unknown key (not shown: it is quoted or longer than 64 bytes): remove it"
		}
		d.fail(d.loc.lineFor(s), shown, "%s", msg)
	}
	for _, k := range d.md.Keys() {
		s := k.String()
		if ks.leaves[s] || ks.tables[s] {
			continue
		}
		if len(k) == 2 && ks.anyLeafUnder[k[0]] {
			continue
		}
		report(k)
	}
}

// showableKey reports whether an unknown key may be named in an error: a
// plain dotted key of at most 64 bytes (a quoted key may hold anything).
func showableKey(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareKeyChar(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

func closest(s string, ks keySpec) string {
	var names []string
	for k := range ks.leaves {
		names = append(names, k)
	}
	for k := range ks.tables {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", 4
	for _, n := range names {
		if strings.EqualFold(n, s) {
			return n
		}
		if dd := EditDistance(strings.ToLower(s), n); dd < bestD {
			best, bestD = n, dd
		}
	}
	return best
}

// EditDistance is the Levenshtein distance of a and b (bytes; 99 when either
// is over 64 bytes): the "did you mean" of keys and of s3mountctl's commands.
func EditDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			c = min(c, prev[j]+1, cur[j-1]+1)
			cur[j] = c
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Typed accessors. Each reports a wrong type at the key's line; secret
// keys never have their value echoed (no accessor echoes a value).

func (d *doc) str(key string, v val) (string, bool) {
	if !v.set {
		return "", false
	}
	s, ok := v.v.(string)
	if !ok {
		d.failKey(key, "must be a string in quotes, not %s", tomlType(v.v))
		return "", false
	}
	return s, true
}

func (d *doc) boolean(key string, v val) (bool, bool) {
	if !v.set {
		return false, false
	}
	b, ok := v.v.(bool)
	if !ok {
		d.failKey(key, "must be true or false (no quotes), not %s", tomlType(v.v))
		return false, false
	}
	return b, true
}

func (d *doc) integer(key string, v val) (int64, bool) {
	if !v.set {
		return 0, false
	}
	n, ok := v.v.(int64)
	if !ok {
		d.failKey(key, "must be an integer (no quotes), not %s", tomlType(v.v))
		return 0, false
	}
	return n, true
}

func (d *doc) strList(key string, v val) ([]string, bool) {
	if !v.set {
		return nil, false
	}
	arr, ok := v.v.([]any)
	if !ok {
		d.failKey(key, `must be an array of strings, e.g. ["a", "b"], not %s`, tomlType(v.v))
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			d.failKey(key, "element %d must be a string in quotes, not %s", i+1, tomlType(e))
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// duration reads a Go duration string ("10s", "1m30s").
func (d *doc) duration(key string, v val, lo, hi time.Duration) (time.Duration, bool) {
	s, ok := d.str(key, v)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.failKey(key, "is not a duration: write e.g. \"10s\", \"500ms\" or \"2m\"")
		return 0, false
	}
	if dur < lo || dur > hi {
		d.failKey(key, "%s is out of range: use %s to %s", dur, fmtDur(lo), fmtDur(hi))
		return 0, false
	}
	return dur, true
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	return d.String()
}

// mode reads an octal permission string ("0644").
func (d *doc) mode(key string, v val) (uint32, bool) {
	if !v.set {
		return 0, false
	}
	s, ok := v.v.(string)
	if !ok {
		d.failKey(key, `must be an octal string in quotes, e.g. "0644" (a bare number is ambiguous)`)
		return 0, false
	}
	m, err := parseMode(s)
	if err != nil {
		d.failKey(key, "%s", err)
		return 0, false
	}
	return m, true
}

func parseMode(s string) (uint32, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	if t == "" || len(t) > 4 {
		return 0, errors.New(`is not a permission mode: write three or four octal digits, e.g. "0644" or "0750"`)
	}
	n, err := strconv.ParseUint(t, 8, 32)
	if err != nil {
		return 0, errors.New(`is not a permission mode: write three or four octal digits, e.g. "0644" or "0750"`)
	}
	if n > 0o777 {
		return 0, errors.New(`has setuid, setgid or sticky bits: only the permission bits (at most "0777") are allowed`)
	}
	return uint32(n), nil
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// minStaging is the smallest fixed max_staging.
const minStaging = 1 << 20

// sizeUnits are the binary units a size may be written with.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}}

// parseSize reads "N" followed by a binary unit ("512MiB", "20 GiB");
// false when s is not such a size.
func parseSize(s string) (int64, bool) {
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n <= 0 || n > (1<<62)/u.mult {
				return 0, false
			}
			return n * u.mult, true
		}
	}
	return 0, false
}

// fmtSize writes bytes with the largest binary unit that divides them.
func fmtSize(n int64) string {
	for i := 3; i >= 0; i-- {
		if u := sizeUnits[i]; n > 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// size reads a number of bytes from lo to hi: an integer, or a size with a
// binary unit ("64MiB").
func (d *doc) size(key string, v val, lo, hi int64) (int64, bool) {
	hint := fmt.Sprintf(`write a size such as "64MiB" or "1GiB", or a number of bytes, from %s to %s`, fmtSize(lo), fmtSize(hi))
	var n int64
	if i, ok := v.v.(int64); ok {
		n = i
	} else {
		s, ok := d.str(key, v)
		if !ok {
			return 0, false
		}
		if n, ok = parseSize(strings.TrimSpace(s)); !ok {
			d.failKey(key, "is not a size: %s", hint)
			return 0, false
		}
	}
	if n < lo || n > hi {
		d.failKey(key, "is out of range: %s", hint)
		return 0, false
	}
	return n, true
}

// stagingCap reads [cache] max_staging: "N%" of the filesystem holding
// cache_dir (1 to 100), a size with a binary unit ("512MiB", "20GiB"), or
// an integer number of bytes. It returns bytes (0 when a share) and the
// share.
func (d *doc) stagingCap(key string, v val) (int64, int, bool) {
	if !v.set {
		return 0, 0, false
	}
	const hint = `write a share of the cache_dir filesystem such as "50%", or a size such as "512MiB" or "20GiB"`
	if n, ok := v.v.(int64); ok {
		if n < minStaging {
			d.failKey(key, "is too small: use at least 1MiB (1048576 bytes), or %s", hint)
			return 0, 0, false
		}
		return n, 0, true
	}
	s, ok := d.str(key, v)
	if !ok {
		return 0, 0, false
	}
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 100 {
			d.failKey(key, "is not a share from 1%% to 100%%: %s", hint)
			return 0, 0, false
		}
		return 0, n, true
	}
	if n, ok := parseSize(s); ok {
		if n < minStaging {
			d.failKey(key, "is too small: use at least 1MiB")
			return 0, 0, false
		}
		return n, 0, true
	}
	d.failKey(key, "is not a size or a share: %s", hint)
	return 0, 0, false
}
