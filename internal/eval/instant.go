package eval

import (
	"errors"
	"math"
	"strings"
	"time"
)

// ParseRFC3339 parses an instant written as RFC 3339 (section 5.6)
// requires: "2006-01-02T15:04:05Z", a fraction of any length after a dot,
// Z or an offset of hours 00-23 and minutes 00-59, and T and Z in either
// case. time.Parse alone is more lenient (a comma before the fraction, an
// offset of +24:00 or +00:60) and less (a lower-case t or z); SPEC's
// before/after values, schedules and `flags eval --at` are RFC 3339.
func ParseRFC3339(s string) (time.Time, error) {
	if !isRFC3339(s) {
		return time.Time{}, errNotRFC3339
	}
	if strings.ContainsAny(s, "tz") {
		s = strings.Map(func(r rune) rune {
			switch r {
			case 't':
				return 'T'
			case 'z':
				return 'Z'
			}
			return r
		}, s)
	}
	return time.Parse(time.RFC3339Nano, s)
}

var errNotRFC3339 = errors.New("not an RFC 3339 date-time (YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm))")

// isRFC3339 checks the shape of an RFC 3339 date-time and the ranges
// time.Parse does not check (the offset's); time.Parse checks the others.
func isRFC3339(s string) bool {
	if len(s) < 20 || !matchesShape(s[:19], "dddd-dd-ddTdd:dd:dd") {
		return false
	}
	zone := s[19:]
	if zone[0] == '.' { // a fraction: one digit or more
		n := 1
		for n < len(zone) && '0' <= zone[n] && zone[n] <= '9' {
			n++
		}
		if n == 1 {
			return false
		}
		zone = zone[n:]
	}
	if zone == "Z" || zone == "z" {
		return true
	}
	if len(zone) != 6 || zone[0] != '+' && zone[0] != '-' || !matchesShape(zone[1:], "dd:dd") {
		return false
	}
	h, _ := decimal(zone[1:3])
	m, _ := decimal(zone[4:6])
	return h <= 23 && m <= 59
}

// matchesShape reports whether s has shape's length, a digit where shape
// has d, T or t where it has T, and shape's byte elsewhere.
func matchesShape(s, shape string) bool {
	if len(s) != len(shape) {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; shape[i] {
		case 'd':
			if c < '0' || c > '9' {
				return false
			}
		case 'T':
			if c != 'T' && c != 't' {
				return false
			}
		default:
			if c != shape[i] {
				return false
			}
		}
	}
	return true
}

// moment is an instant with nanosecond precision and no range limit worth
// mentioning: seconds and nanoseconds since the Unix epoch.
type moment struct {
	sec  int64
	nsec int64
}

func (a moment) before(b moment) bool {
	return a.sec < b.sec || a.sec == b.sec && a.nsec < b.nsec
}

// instant converts an RFC 3339 string or a number of Unix milliseconds
// (fractions allowed) without losing sub-millisecond precision.
func instant(v any) (moment, bool) {
	switch v := v.(type) {
	case string:
		if sec, ok := utcSeconds(v); ok {
			return moment{sec, 0}, true
		}
		t, err := ParseRFC3339(v)
		if err != nil {
			return moment{}, false
		}
		return moment{t.Unix(), int64(t.Nanosecond())}, true
	case float64:
		if v != v || v > 9.2e18 || v < -9.2e18 { // NaN or out of range
			return moment{}, false
		}
		sec := math.Floor(v / 1000)
		nsec := math.Round((v - sec*1000) * 1e6)
		if nsec >= 1e9 {
			sec, nsec = sec+1, nsec-1e9
		}
		return moment{int64(sec), int64(nsec)}, true
	}
	return moment{}, false
}

// utcSeconds reads the commonest instant, "2006-01-02T15:04:05Z", as Unix
// seconds, or reports false for anything else (which time.Parse then
// reads). Contexts carry such timestamps (createdAt, signupDate) and a
// before/after clause reads the context's at every evaluation: parsed here
// it costs a fifth of time.Parse. It accepts exactly what time.Parse with
// time.RFC3339Nano accepts in that shape (TestUTCSecondsAgreesWithTimeParse).
func utcSeconds(v string) (int64, bool) {
	if len(v) != 20 || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' || v[19] != 'Z' {
		return 0, false
	}
	var n [6]int // year, month, day, hour, minute, second
	for i, f := range utcFields {
		x, ok := decimal(v[f.at : f.at+f.width])
		if !ok || x > f.max {
			return 0, false
		}
		n[i] = x
	}
	if n[1] < 1 || n[2] < 1 || n[2] > daysIn(n[0], n[1]) {
		return 0, false
	}
	return daysSinceEpoch(n[0], n[1], n[2])*86400 + int64(n[3]*3600+n[4]*60+n[5]), true
}

// utcFields are where utcSeconds reads the fields of an instant, and their
// largest values.
var utcFields = [6]struct{ at, width, max int }{{0, 4, 9999}, {5, 2, 12}, {8, 2, 31}, {11, 2, 23}, {14, 2, 59}, {17, 2, 59}}

// decimal reads digits, all of d.
func decimal(d string) (int, bool) {
	n := 0
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn is the number of days of month in year (proleptic Gregorian).
func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysSinceEpoch counts the days from 1970-01-01 to a date of years 0 to
// 9999 (Howard Hinnant's days_from_civil).
func daysSinceEpoch(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := int64(month+9) % 12
	doy := (153*mp+2)/5 + int64(day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
