package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// val holds one TOML value as written, whatever its type, so that a wrong
// type is reported by validation (with file, line and key, and without the
// value when it may be a secret) instead of stopping the decoder.
type val struct {
	v   any
	set bool
}

func (x *val) UnmarshalTOML(v any) error {
	x.v, x.set = v, true
	return nil
}

// doc is one file being decoded and validated; it collects every error.
type doc struct {
	file string
	src  string
	loc  *keyLocator
	md   toml.MetaData
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

// decode parses d.src into v (a struct of vals and tables). It returns
// false when the document cannot be used at all (syntax error, or a table
// written as a value); the error is already recorded.
func (d *doc) decode(v any) bool {
	// Editors on Windows may start a file with a byte order mark.
	d.src = strings.TrimPrefix(d.src, "\ufeff")
	md, err := toml.Decode(d.src, v)
	d.md = md
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			d.fail(pe.Position.Line, pe.LastKey, "%s (fix the TOML syntax)", d.parseMessage(pe))
			return false
		}
		// A type error of a table (e.g. cache = "x" where [cache] belongs):
		// the decoder names the line and the key in its message.
		d.loc = newKeyLocator(d.src)
		d.loc.locate(md.Keys())
		d.fail(typeErrLine(err), typeErrKey(err), "%s", tableTypeMessage(typeErrKey(err), err))
		return false
	}
	d.loc = newKeyLocator(d.src)
	d.loc.locate(md.Keys())
	return true
}

var (
	reTypeErrLine = regexp.MustCompile(`line (\d+)`)
	reTypeErrKey  = regexp.MustCompile(`last key "([^"]*)"`)
)

func typeErrLine(err error) int {
	m := reTypeErrLine.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func typeErrKey(err error) string {
	m := reTypeErrKey.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	return m[1]
}

func tableTypeMessage(key string, err error) string {
	switch key {
	case "access.allow":
		return "must be an array of tables: write each rule as [[access.allow]] followed by users, groups, actions"
	case "access", "cache", "credentials", "roles", "binaries":
		return fmt.Sprintf("must be a table: write [%s] on a line of its own and its keys below it", key)
	}
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	if i := strings.Index(msg, "): "); i >= 0 {
		msg = msg[i+3:]
	}
	return msg + " (check the value's type)"
}

var reQuoted = regexp.MustCompile(`'[^']*'|"[^"]*"`)

// parseMessage is a ParseError's message, with any quoted fragment hidden
// when the error is in the [credentials] table or on a line naming a
// secret: a syntax error must never echo a secret.
func (d *doc) parseMessage(pe toml.ParseError) string {
	msg := pe.Message
	if d.secretLine(pe.Position.Line) || strings.Contains(pe.LastKey, "credentials") ||
		strings.Contains(pe.LastKey, "secret") || strings.Contains(pe.LastKey, "token") {
		msg = reQuoted.ReplaceAllString(msg, "(value hidden)")
	}
	return msg
}

func (d *doc) secretLine(n int) bool {
	lines := strings.Split(d.src, "\n")
	if n < 1 || n > len(lines) {
		return true // unknown: be safe
	}
	l := strings.ToLower(lines[n-1])
	if strings.Contains(l, "secret") || strings.Contains(l, "token") || strings.Contains(l, "credentials") {
		return true
	}
	for i := n - 1; i >= 0; i-- {
		t := strings.TrimSpace(lines[i])
		if strings.HasPrefix(t, "[") {
			return strings.Contains(t, "credentials")
		}
	}
	return false
}

// keySpec describes the keys a file may hold.
type keySpec struct {
	leaves map[string]bool // allowed leaf keys ("a", "t.b")
	tables map[string]bool // allowed tables ("t")
	// anyLeafUnder allows any leaf key directly under these tables (maps).
	anyLeafUnder map[string]bool
}

// unknownKeys reports every key the file holds that the format does not
// know, exactly (the decoder itself matches struct fields case-insensitively),
// plus whatever MetaData.Undecoded reports.
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
		d.fail(d.loc.lineFor(s), s, "%s", msg)
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
	for _, k := range d.md.Undecoded() {
		if ks.anyLeafUnder[k[0]] && len(k) == 2 {
			continue
		}
		report(k)
	}
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
		if dd := editDistance(strings.ToLower(s), n); dd < bestD {
			best, bestD = n, dd
		}
	}
	return best
}

func editDistance(a, b string) int {
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
func (d *doc) duration(key string, v val, def, lo, hi time.Duration) time.Duration {
	s, ok := d.str(key, v)
	if !ok {
		return def
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.failKey(key, "%q is not a duration: write e.g. \"10s\", \"500ms\" or \"2m\"", s)
		return def
	}
	if dur < lo || dur > hi {
		d.failKey(key, "%s is out of range: use %s to %s", dur, fmtDur(lo), fmtDur(hi))
		return def
	}
	return dur
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	return d.String()
}

// mode reads an octal permission string ("0644").
func (d *doc) mode(key string, v val, def uint32) uint32 {
	if !v.set {
		return def
	}
	s, ok := v.v.(string)
	if !ok {
		d.failKey(key, `must be an octal string in quotes, e.g. "0644" (a bare number is ambiguous)`)
		return def
	}
	m, err := parseMode(s)
	if err != nil {
		d.failKey(key, "%q %s", s, err)
		return def
	}
	return m
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

// defaultMaxStagingPercent is [cache] max_staging's default: half of the
// filesystem holding cache_dir.
const defaultMaxStagingPercent = 50

// minStaging is the smallest fixed max_staging.
const minStaging = 1 << 20

// stagingCap reads [cache] max_staging: "N%" of the filesystem holding
// cache_dir (1 to 100), a size with a binary unit ("512MiB", "20GiB"), or
// an integer number of bytes. It returns bytes (0 when a share) and the
// share.
func (d *doc) stagingCap(key string, v val, defBytes int64, defPct int) (int64, int) {
	if !v.set {
		return defBytes, defPct
	}
	const hint = `write a share of the cache_dir filesystem such as "50%", or a size such as "512MiB" or "20GiB"`
	if n, ok := v.v.(int64); ok {
		if n < minStaging {
			d.failKey(key, "is too small: use at least 1MiB (1048576 bytes), or %s", hint)
			return defBytes, defPct
		}
		return n, 0
	}
	s, ok := d.str(key, v)
	if !ok {
		return defBytes, defPct
	}
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 100 {
			d.failKey(key, "is not a share from 1%% to 100%%: %s", hint)
			return defBytes, defPct
		}
		return 0, n
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n <= 0 || n > (1<<62)/u.mult {
				break
			}
			if n*u.mult < minStaging {
				d.failKey(key, "is too small: use at least 1MiB")
				return defBytes, defPct
			}
			return n * u.mult, 0
		}
	}
	d.failKey(key, "is not a size or a share: %s", hint)
	return defBytes, defPct
}
