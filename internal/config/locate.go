package config

import (
	"strconv"

	"github.com/BurntSushi/toml"
)

// keyLines maps every key of a TOML document (as toml.Key.String() spells
// it: tables, dotted-key prefixes, keys in inline tables) to the line where
// it first appears.
//
// Why our own scanner: BurntSushi/toml v1.6.0 records key positions
// (MetaData.keyInfo) but exports none of them; only a ParseError carries a
// Position. An unknown key and a value that fails Validate need a line too,
// so we locate keys ourselves. The input has already been parsed by the
// library, so this scanner only has to be right for valid TOML; on anything
// else it stops early and the affected errors simply carry no line.
func keyLines(src string) map[string]int {
	s := &keyScanner{src: src, line: 1, out: make(map[string]int)}
	s.document()
	return s.out
}

type keyScanner struct {
	src  string
	i    int
	line int
	out  map[string]int
	bad  bool
}

func (s *keyScanner) eof() bool { return s.bad || s.i >= len(s.src) }

func (s *keyScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *keyScanner) advance() {
	if s.src[s.i] == '\n' {
		s.line++
	}
	s.i++
}

func (s *keyScanner) record(path []string) {
	for n := 1; n <= len(path); n++ {
		k := toml.Key(path[:n]).String()
		if _, ok := s.out[k]; !ok {
			s.out[k] = s.line
		}
	}
}

// skipSpace skips blanks; with newlines also line breaks and comments.
func (s *keyScanner) skipSpace(newlines bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			s.advance()
		case c == '#' && newlines:
			for !s.eof() && s.peek() != '\n' {
				s.advance()
			}
		case c == '\n' && newlines:
			s.advance()
		default:
			return
		}
	}
}

func (s *keyScanner) document() {
	var table []string
	for !s.eof() {
		start := s.i
		s.skipSpace(true)
		if s.eof() {
			return
		}
		if s.peek() == '[' {
			s.advance()
			if s.peek() == '[' {
				s.advance()
			}
			s.skipSpace(false)
			table = s.key()
			s.record(table)
			for !s.eof() && s.peek() != '\n' {
				s.advance() // "]" or "]]" and any trailing comment
			}
		} else {
			k := s.key()
			full := append(append([]string{}, table...), k...)
			s.record(full)
			s.skipSpace(false)
			if s.peek() != '=' {
				s.bad = true
				return
			}
			s.advance()
			s.value(full)
			s.skipSpace(false)
			if s.peek() == '#' {
				s.skipSpace(true)
			}
		}
		if s.i == start {
			s.bad = true // no progress: not TOML we understand
		}
	}
}

// key reads a (dotted, possibly quoted) key.
func (s *keyScanner) key() []string {
	var parts []string
	for !s.eof() {
		s.skipSpace(false)
		var part string
		switch c := s.peek(); {
		case c == '"':
			raw := s.basicString()
			u, err := strconv.Unquote(raw)
			if err != nil {
				u = raw[1 : len(raw)-1]
			}
			part = u
		case c == '\'':
			raw := s.literalString()
			part = raw[1 : len(raw)-1]
		default:
			st := s.i
			for !s.eof() && isBare(s.peek()) {
				s.advance()
			}
			part = s.src[st:s.i]
			if part == "" {
				s.bad = true
				return parts
			}
		}
		parts = append(parts, part)
		s.skipSpace(false)
		if s.peek() != '.' {
			return parts
		}
		s.advance()
	}
	return parts
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// basicString consumes a "..." string and returns it with its quotes.
func (s *keyScanner) basicString() string {
	st := s.i
	s.advance()
	for !s.eof() {
		switch s.peek() {
		case '\\':
			s.advance()
			if !s.eof() {
				s.advance()
			}
		case '"':
			s.advance()
			return s.src[st:s.i]
		case '\n':
			s.bad = true
			return `""`
		default:
			s.advance()
		}
	}
	return `""`
}

func (s *keyScanner) literalString() string {
	st := s.i
	s.advance()
	for !s.eof() {
		switch s.peek() {
		case '\'':
			s.advance()
			return s.src[st:s.i]
		case '\n':
			s.bad = true
			return "''"
		default:
			s.advance()
		}
	}
	return "''"
}

func (s *keyScanner) hasPrefix(p string) bool {
	return !s.bad && len(s.src)-s.i >= len(p) && s.src[s.i:s.i+len(p)] == p
}

// multiline consumes a multi-line basic or literal string; delim is its
// three quote characters.
func (s *keyScanner) multiline(delim string, escapes bool) {
	for i := 0; i < 3; i++ {
		s.advance()
	}
	for !s.eof() {
		if escapes && s.peek() == '\\' {
			s.advance()
			if !s.eof() {
				s.advance()
			}
			continue
		}
		if s.hasPrefix(delim) {
			for i := 0; i < 3; i++ {
				s.advance()
			}
			// Up to two quotes may touch the closing delimiter.
			for n := 0; n < 2 && !s.eof() && s.peek() == delim[0]; n++ {
				s.advance()
			}
			return
		}
		s.advance()
	}
}

func (s *keyScanner) value(path []string) {
	s.skipSpace(false)
	switch {
	case s.hasPrefix(`"""`):
		s.multiline(`"""`, true)
	case s.hasPrefix(`'''`):
		s.multiline(`'''`, false)
	case s.peek() == '"':
		s.basicString()
	case s.peek() == '\'':
		s.literalString()
	case s.peek() == '[':
		s.advance()
		for !s.eof() {
			s.skipSpace(true)
			if s.peek() == ']' {
				s.advance()
				return
			}
			st := s.i
			s.value(path)
			s.skipSpace(true)
			if s.peek() == ',' {
				s.advance()
			} else if s.i == st {
				s.bad = true
			}
		}
	case s.peek() == '{':
		s.advance()
		for !s.eof() {
			s.skipSpace(false)
			if s.peek() == '}' {
				s.advance()
				return
			}
			k := append(append([]string{}, path...), s.key()...)
			s.record(k)
			s.skipSpace(false)
			if s.peek() != '=' {
				s.bad = true
				return
			}
			s.advance()
			s.value(k)
			s.skipSpace(false)
			if s.peek() == ',' {
				s.advance()
			}
		}
	default:
		// Number, boolean or date-time (which may contain a space).
		st := s.i
		for !s.eof() {
			c := s.peek()
			if c == ',' || c == ']' || c == '}' || c == '#' || c == '\n' {
				break
			}
			s.advance()
		}
		if s.i == st {
			s.bad = true
		}
	}
}
