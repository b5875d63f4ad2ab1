package main

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
)

// results holds every sample of a run, by benchmark name (without the
// -GOMAXPROCS suffix) and unit.
type results struct {
	samples map[string]map[string][]float64
	config  map[string]string // goos, goarch, cpu, pkg of the last file
}

func newResults() *results {
	return &results{samples: map[string]map[string][]float64{}, config: map[string]string{}}
}

// read adds the results of `go test -bench` output r.
func (rs *results) read(r io.Reader, name string) error {
	br := benchfmt.NewReader(r, name)
	for br.Scan() {
		res, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		for _, c := range res.Config {
			if c.File {
				rs.config[c.Key] = string(c.Value)
			}
		}
		full := res.Name.String()
		if i := strings.LastIndexByte(full, '-'); i > 0 && isDigits(full[i+1:]) {
			full = full[:i] // the -GOMAXPROCS suffix
		}
		byUnit := rs.samples[full]
		if byUnit == nil {
			byUnit = map[string][]float64{}
			rs.samples[full] = byUnit
		}
		for _, v := range res.Values {
			unit, value := v.Unit, v.Value
			if v.OrigUnit != "" {
				unit, value = v.OrigUnit, v.OrigValue
			}
			byUnit[unit] = append(byUnit[unit], value)
		}
	}
	return br.Err()
}

// get returns the samples of benchmark name in unit.
func (rs *results) get(name, unit string) []float64 { return rs.samples[name][unit] }

// median is benchstat's center of xs (NaN for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := benchmath.NewSample(xs, &benchmath.DefaultThresholds)
	return benchmath.AssumeNothing.Summary(s, 0.95).Center
}

// ratio is variant ÷ reference: the ratio of their medians, with a 95%
// bootstrap interval (each side resampled, the ratio of the resamples'
// medians, 2.5th and 97.5th percentiles).
type ratio struct {
	value, lo, hi float64
	n             int // the fewer samples of the two sides
}

var errNoSamples = errors.New("no samples")

func ratioOf(variant, ref []float64) (ratio, error) {
	if len(variant) == 0 || len(ref) == 0 {
		return ratio{value: math.NaN(), lo: math.NaN(), hi: math.NaN()}, errNoSamples
	}
	r := ratio{value: median(variant) / median(ref), n: min(len(variant), len(ref))}
	const rounds = 2000
	rng := rand.New(rand.NewPCG(1, 2))
	boot := make([]float64, rounds)
	v, f := make([]float64, len(variant)), make([]float64, len(ref))
	for i := range boot {
		for j := range v {
			v[j] = variant[rng.IntN(len(variant))]
		}
		for j := range f {
			f[j] = ref[rng.IntN(len(ref))]
		}
		boot[i] = plainMedian(v) / plainMedian(f)
	}
	slices.Sort(boot)
	r.lo, r.hi = boot[rounds*25/1000], boot[rounds*975/1000]
	return r, nil
}

func plainMedian(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
