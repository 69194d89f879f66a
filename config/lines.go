package config

import (
	"strings"

	"github.com/BurntSushi/toml"
)

// BurntSushi/toml (v1.6.0) keeps each key's position private: MetaData
// gives the keys in document order but not their lines. keyLocator finds
// them by scanning the source: every line is tokenised (strings, multi-line
// strings and comments understood), the keys defined on it are collected,
// and MetaData.Keys() is walked in order, each key found on the first line
// at or after the previous key's line that defines it. The document has
// already parsed, so this only has to tell keys from values.

type srcLine struct {
	header []string // table header path, nil if the line is no header
	keys   []string // key names (each piece of dotted keys) defined on the line
}

type keyLocator struct {
	lines  []srcLine
	cursor int
	found  map[string][]int // key path → lines, in order of occurrence
}

func newKeyLocator(src string) *keyLocator {
	return &keyLocator{lines: scanLines(src), found: map[string][]int{}}
}

// locate walks md's keys once and records every key's line(s).
func (l *keyLocator) locate(keys []toml.Key) {
	// A key not found rescans to the end: bound the work on absurd files.
	if len(keys)*len(l.lines) > 50_000_000 {
		return
	}
	for _, k := range keys {
		if line := l.find(k); line > 0 {
			s := k.String()
			l.found[s] = append(l.found[s], line)
		}
	}
}

// line returns the first line of key ("a.b"), or 0.
func (l *keyLocator) line(key string) int {
	if ls := l.found[key]; len(ls) > 0 {
		return ls[0]
	}
	return 0
}

// lineIn returns the first line of key within [from, to) (to 0: no end), or 0.
func (l *keyLocator) lineIn(key string, from, to int) int {
	for _, n := range l.found[key] {
		if n >= from && (to == 0 || n < to) {
			return n
		}
	}
	return 0
}

// lineFor returns the first line of key, else of its nearest located parent.
func (l *keyLocator) lineFor(key string) int {
	for key != "" {
		if n := l.line(key); n > 0 {
			return n
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

func (l *keyLocator) find(k toml.Key) int {
	if len(k) == 0 {
		return 0
	}
	last := k[len(k)-1]
	for i := l.cursor; i < len(l.lines); i++ {
		ln := l.lines[i]
		match := false
		if ln.header != nil {
			match = equalPath(ln.header, k)
		} else {
			for _, name := range ln.keys {
				if name == last {
					match = true
					break
				}
			}
		}
		if match {
			l.cursor = i
			return i + 1
		}
	}
	return 0
}

func equalPath(a []string, b toml.Key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type tokKind int

const (
	tokBare  tokKind = iota // bare key or value word
	tokStr                  // a single-line string
	tokPunct                // one of = . , { } [ ]
	tokOther                // a multi-line string or anything else
)

type token struct {
	kind tokKind
	text string // unquoted text for tokBare/tokStr, the char for tokPunct
}

// scanLines tokenises src line by line.
func scanLines(src string) []srcLine {
	raw := strings.Split(src, "\n")
	out := make([]srcLine, len(raw))
	ml := "" // the open multi-line string delimiter carried across lines
	for n, line := range raw {
		var toks []token
		i := 0
		if ml != "" {
			end := strings.Index(line, ml)
			if end < 0 {
				continue
			}
			i = end + 3
			for i < len(line) && line[i] == ml[0] { // """" closes with extra quotes
				i++
			}
			ml = ""
			toks = append(toks, token{kind: tokOther})
		}
		for i < len(line) {
			c := line[i]
			switch {
			case c == ' ' || c == '\t' || c == '\r':
				i++
			case c == '#':
				i = len(line)
			case c == '"' || c == '\'':
				delim := string([]byte{c, c, c})
				if strings.HasPrefix(line[i:], delim) {
					end := strings.Index(line[i+3:], delim)
					if end < 0 {
						ml = delim
						i = len(line)
					} else {
						i += 3 + end + 3
						for i < len(line) && line[i] == c {
							i++
						}
					}
					toks = append(toks, token{kind: tokOther})
					continue
				}
				j := i + 1
				var b strings.Builder
				for j < len(line) && line[j] != c {
					if c == '"' && line[j] == '\\' && j+1 < len(line) {
						b.WriteByte(line[j])
						j++
					}
					b.WriteByte(line[j])
					j++
				}
				text := b.String()
				if c == '"' {
					text = unescapeBasic(text)
				}
				toks = append(toks, token{kind: tokStr, text: text})
				i = j + 1
			case strings.IndexByte("=.,{}[]", c) >= 0:
				toks = append(toks, token{kind: tokPunct, text: string(c)})
				i++
			default:
				j := i
				for j < len(line) && isBareKeyChar(line[j]) {
					j++
				}
				if j == i {
					j = i + 1
					toks = append(toks, token{kind: tokOther})
				} else {
					toks = append(toks, token{kind: tokBare, text: line[i:j]})
				}
				i = j
			}
		}
		out[n] = classify(toks)
	}
	return out
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func unescapeBasic(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var v string
	if _, err := toml.Decode("k = \""+s+"\"", &struct {
		K *string `toml:"k"`
	}{K: &v}); err != nil {
		return s
	}
	return v
}

func classify(toks []token) srcLine {
	var sl srcLine
	if len(toks) > 0 && toks[0].kind == tokPunct && toks[0].text == "[" {
		// [a.b] or [[a.b]]
		var path []string
		for _, t := range toks[1:] {
			if t.kind == tokPunct && t.text == "]" {
				break
			}
			if t.kind == tokBare || t.kind == tokStr {
				path = append(path, t.text)
			}
		}
		if len(path) > 0 {
			sl.header = path
			return sl
		}
	}
	isKeyTok := func(t token) bool { return t.kind == tokBare || t.kind == tokStr }
	for i, t := range toks {
		if !isKeyTok(t) {
			continue
		}
		prevOK := i == 0 || toks[i-1].kind == tokPunct && strings.Contains(".{,", toks[i-1].text)
		nextOK := i+1 < len(toks) && toks[i+1].kind == tokPunct && (toks[i+1].text == "=" || toks[i+1].text == ".")
		if prevOK && nextOK {
			// A dotted chain a.b.c = … : every piece is a key.
			sl.keys = append(sl.keys, t.text)
		}
	}
	return sl
}
