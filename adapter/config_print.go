package adapter

import (
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// LogValue implements slog.LogValuer: a group with one attribute per field,
// keyed by the variable name without prefix in lower case ("flush_delay").
// A set password shows as "***".
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(c.attrs()...)
}

// String formats c as key=value pairs, keyed as in LogValue, with a set
// password shown as "***".
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("Config{")
	for i, a := range c.attrs() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.Key)
		b.WriteByte('=')
		s := a.Value.String()
		if s == "" || strings.ContainsFunc(s, func(r rune) bool {
			return r == '"' || r == '=' || r == '}' || !strconv.IsGraphic(r) || unicode.IsSpace(r)
		}) {
			s = strconv.Quote(s)
		}
		b.WriteString(s)
	}
	b.WriteByte('}')
	return b.String()
}

// GoString makes %#v print String's redacted form instead of the fields.
func (c Config) GoString() string { return c.String() }

// attrs lists every field of c for String and LogValue, secrets redacted:
// numbers and booleans as such, everything else as a variable would hold it.
func (c Config) attrs() []slog.Attr {
	rv := reflect.ValueOf(c)
	attrs := make([]slog.Attr, 0, rv.NumField())
	for _, f := range configFields() {
		fv := rv.Field(f.index)
		var v slog.Value
		switch x := fv.Interface().(type) {
		case int:
			v = slog.IntValue(x)
		case bool:
			v = slog.BoolValue(x)
		case float64:
			v = slog.Float64Value(x)
		default:
			s := formatValue(fv)
			if f.secret && s != "" {
				s = "***"
			}
			v = slog.StringValue(s)
		}
		attrs = append(attrs, slog.Attr{Key: f.key, Value: v})
	}
	return attrs
}

// fmtDuration prints d without trailing zero units: "1h", "10m", "1m30s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
