package bus

import (
	"time"

	"github.com/switchyard-go/switchyard/internal/calendar"
)

// parsePublishedAt returns the time in a published_at value as nanoseconds
// since the Unix epoch. The layout NewMessage writes, RFC 3339 in UTC with
// up to nine fraction digits ("2006-01-02T15:04:05.999999999Z"), is read
// directly; any other RFC 3339 value (an offset, from another producer)
// goes through time.Parse. A time outside the years 1900 to 2199 is no
// publication time (Go's zero time, "0001-01-01T00:00:00Z", is what a
// producer with none writes): false, as for a value that does not parse.
func parsePublishedAt(s string) (int64, bool) {
	if ns, ok := parseUTC(s); ok {
		return ns, true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1900 || t.Year() > 2199 {
		return 0, false
	}
	return t.UnixNano(), true
}

// parseUTC reads "YYYY-MM-DDTHH:MM:SS[.f…]Z" with 1 to 9 fraction digits
// and a year from 1900 to 2199 (well inside int64 nanoseconds), and reports
// false for anything else, including values out of range.
func parseUTC(s string) (int64, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		year < 1900 || year > 2199 || month < 1 || month > 12 || day < 1 || day > int64(calendar.DaysIn(int(month), int(year))) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	var nanos int64
	if frac := s[19 : len(s)-1]; frac != "" {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' {
			return 0, false
		}
		n, ok := digits(frac[1:])
		if !ok {
			return 0, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nanos = n
	}
	secs := daysFromCivil(year, month, day)*86400 + hour*3600 + minute*60 + sec
	return secs*1e9 + nanos, true
}

// digits parses s, 1 to 18 ASCII digits.
func digits(s string) (int64, bool) {
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + int64(c)
	}
	return n, len(s) > 0
}

// daysFromCivil is the number of days from 1970-01-01 to the given date of
// the proleptic Gregorian calendar (Howard Hinnant's days_from_civil).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400 // y > 0 here
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
