// Command paired reads `go test -bench` output from runs that each measured
// a reference and its variants once (rounds), and prints, per benchmark and
// unit, the median of the rounds' own ratios variant ÷ reference with their
// range, interquartile range and a 95% bootstrap interval of the median.
// Where the machine's load drifts from round to round, these paired ratios
// move less than the ratio of two medians that benchstat prints.
//
// Usage:
//
//	go run ./benchmarks/paired -col metrics -base off [-unit msgs/s,cpu-ns/op] bench.txt...
//
// -col names the sub-benchmark key that tells reference and variants apart
// (as in benchstat -col /metrics) and -base the reference's value. The
// i-th sample of each variant is paired with the i-th sample of the
// reference: run the rounds so that each has one sample of each, as the
// commands in docs/performance.md do.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	col := flag.String("col", "", "the sub-benchmark key whose values are compared (required)")
	base := flag.String("base", "", "the reference's value of -col (required)")
	units := flag.String("unit", "", "comma-separated units to report (default: every unit)")
	flag.Parse()
	if *col == "" || *base == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: paired -col key -base value [-unit u1,u2] file...")
		os.Exit(2)
	}
	s := newSamples(*col)
	for _, path := range flag.Args() {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		err = s.read(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(1)
		}
	}
	var want []string
	if *units != "" {
		want = strings.Split(*units, ",")
	}
	s.report(os.Stdout, *base, want)
}

// samples holds the values of each benchmark (its name without -col and
// without the GOMAXPROCS suffix), value of -col and unit, in file order.
type samples struct {
	col    string
	groups []string // in order of appearance
	vals   map[string]map[string]map[string][]float64
	units  map[string][]string // group → units in order of appearance
}

func newSamples(col string) *samples {
	return &samples{col: col, vals: map[string]map[string]map[string][]float64{}, units: map[string][]string{}}
}

func (s *samples) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		group, value, ok := s.split(fields[0])
		if !ok {
			continue
		}
		if s.vals[group] == nil {
			s.vals[group] = map[string]map[string][]float64{}
			s.groups = append(s.groups, group)
		}
		if s.vals[group][value] == nil {
			s.vals[group][value] = map[string][]float64{}
		}
		// fields[1] is the iteration count; then value, unit pairs.
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return fmt.Errorf("%q: %w", sc.Text(), err)
			}
			unit := fields[i+1]
			if !slices.Contains(s.units[group], unit) {
				s.units[group] = append(s.units[group], unit)
			}
			s.vals[group][value][unit] = append(s.vals[group][value][unit], v)
		}
	}
	return sc.Err()
}

// split takes the -col component out of a benchmark name.
func (s *samples) split(name string) (group, value string, ok bool) {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if v, found := strings.CutPrefix(p, s.col+"="); found {
			return strings.Join(slices.Delete(parts, i, i+1), "/"), v, true
		}
	}
	return "", "", false
}

func (s *samples) report(w io.Writer, base string, units []string) {
	for _, group := range s.groups {
		ref := s.vals[group][base]
		if ref == nil {
			continue
		}
		var values []string
		for v := range s.vals[group] {
			if v != base {
				values = append(values, v)
			}
		}
		slices.Sort(values)
		for _, v := range values {
			for _, unit := range s.units[group] {
				if len(units) > 0 && !slices.Contains(units, unit) {
					continue
				}
				a, b := ref[unit], s.vals[group][v][unit]
				n := min(len(a), len(b))
				if n == 0 {
					continue
				}
				ratios := make([]float64, n)
				for i := range n {
					ratios[i] = b[i] / a[i]
				}
				st := summarize(ratios)
				fmt.Fprintf(w, "%s %s=%s÷%s %s: median %.4f [%.4f–%.4f] IQR %.4f–%.4f 95%% CI %.4f–%.4f n=%d\n",
					group, s.col, v, base, unit, st.median, st.min, st.max, st.q1, st.q3, st.lo, st.hi, n)
			}
		}
	}
}

type summary struct{ median, min, max, q1, q3, lo, hi float64 }

// summarize gives the median of xs, its range and quartiles, and a 95%
// percentile-bootstrap interval of the median (10,000 resamples, a fixed
// seed: the same input prints the same output).
func summarize(xs []float64) summary {
	sorted := slices.Sorted(slices.Values(xs))
	st := summary{
		median: quantile(sorted, 0.5), min: sorted[0], max: sorted[len(sorted)-1],
		q1: quantile(sorted, 0.25), q3: quantile(sorted, 0.75),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const resamples = 10000
	medians := make([]float64, resamples)
	resample := make([]float64, len(xs))
	for i := range medians {
		for j := range resample {
			resample[j] = xs[rng.IntN(len(xs))]
		}
		slices.Sort(resample)
		medians[i] = quantile(resample, 0.5)
	}
	slices.Sort(medians)
	st.lo, st.hi = quantile(medians, 0.025), quantile(medians, 0.975)
	return st
}

// quantile of sorted xs, interpolating between neighbours.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}
