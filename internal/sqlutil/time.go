package sqlutil

import (
	"fmt"
	"time"
)

// NullTime scans a nullable time: a time.Time from the driver (PostgreSQL's
// TIMESTAMP and TIMESTAMPTZ), or text in keyflow's SQLite form, SQLAlchemy's
// SQLite form, or another common one. Text without a zone is UTC; every
// time it holds is in UTC.
type NullTime struct {
	T     time.Time
	Valid bool // false for SQL NULL
}

// textTimeLayouts are the text forms NullTime reads, most common first.
var textTimeLayouts = []string{
	time.RFC3339Nano,                // keyflow's SQLite form: 2006-01-02T15:04:05.000000Z
	"2006-01-02 15:04:05.999999999", // SQLAlchemy's SQLite DateTime
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
}

// Scan implements sql.Scanner.
func (v *NullTime) Scan(src any) error {
	switch x := src.(type) {
	case nil:
		*v = NullTime{}
		return nil
	case time.Time:
		*v = NullTime{T: x.UTC(), Valid: true}
		return nil
	case []byte:
		return v.parse(string(x))
	case string:
		return v.parse(x)
	}
	return fmt.Errorf("cannot scan %T into a time", src)
}

func (v *NullTime) parse(s string) error {
	for _, layout := range textTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			*v = NullTime{T: t.UTC(), Valid: true}
			return nil
		}
	}
	return fmt.Errorf("cannot parse time %q", s)
}

// Ptr returns a pointer to a copy of the time, or nil for NULL.
func (v NullTime) Ptr() *time.Time {
	if !v.Valid {
		return nil
	}
	t := v.T
	return &t
}
