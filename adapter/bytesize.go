package adapter

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes.
//
// As text (environment variables) it is a plain byte count ("1048576") or an
// integer followed by a binary unit: B, KiB, MiB, GiB or TiB ("512B",
// "64KiB", "4MiB", "1GiB"). Units are 1024-based and case-insensitive, and a
// space may separate number and unit. Decimal units such as "MB" are rejected
// rather than guessed at, as are fractions and negative sizes.
type ByteSize int64

// Binary byte-size units.
const (
	KiB ByteSize = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

// byteUnits lists the units from the largest down; String picks the first
// that divides the size exactly.
var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"TiB", TiB},
	{"GiB", GiB},
	{"MiB", MiB},
	{"KiB", KiB},
	{"B", 1},
}

// ParseByteSize parses s as described on ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	digits, unit := t[:i], strings.TrimSpace(t[i:])
	if digits == "" {
		return 0, fmt.Errorf("invalid byte size %q: want a non-negative whole number, optionally followed by B, KiB, MiB, GiB or TiB", s)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("invalid byte size %q: too large", s)
		}
		return 0, fmt.Errorf("invalid byte size %q: %w", s, err)
	}
	mult := ByteSize(0)
	if unit == "" {
		mult = 1
	}
	for _, u := range byteUnits {
		if strings.EqualFold(unit, u.name) {
			mult = u.size
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("invalid byte size %q: unit %q is not one of B, KiB, MiB, GiB, TiB (1024-based)", s, unit)
	}
	if n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("invalid byte size %q: too large", s)
	}
	return ByteSize(n) * mult, nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseByteSize.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText implements encoding.TextMarshaler; the text is String's and
// parses back to the same size.
func (b ByteSize) MarshalText() ([]byte, error) {
	return []byte(b.String()), nil
}

// String formats the size in the largest unit that represents it exactly:
// "4MiB", "1536B", "0B".
func (b ByteSize) String() string {
	for _, u := range byteUnits {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
