package calendar

import (
	"testing"
	"time"
)

// DaysIn agrees with the time package over four centuries.
func TestDaysInAgreesWithTime(t *testing.T) {
	for year := 1800; year < 2200; year++ {
		for month := 1; month <= 12; month++ {
			// Day 0 of the next month is the last day of this one.
			want := time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
			if got := DaysIn(month, year); got != want {
				t.Fatalf("DaysIn(%d, %d) = %d, want %d", month, year, got, want)
			}
		}
	}
}
