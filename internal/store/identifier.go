package store

// IdentifierPattern is the rule ValidIdentifier checks, for error messages.
const IdentifierPattern = `^[A-Za-z][A-Za-z0-9_]{0,47}$`

// ValidIdentifier reports whether s can be used unquoted as a keyspace or
// table name: a letter, then up to 47 letters, digits or underscores. Names are
// interpolated into CQL text only after this check.
func ValidIdentifier(s string) bool {
	if len(s) == 0 || len(s) > 48 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}
