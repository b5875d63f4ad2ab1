// Package calendar has the date arithmetic that switchyard's parsers of
// RFC 3339 timestamps share.
package calendar

// DaysIn is the number of days of month (1–12) in the proleptic Gregorian
// year, as time.Parse counts them.
func DaysIn(month, year int) int {
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
