package main

import "time"

// callRec is one call of the xds-route benchmark: when it started
// (nanoseconds since the run's epoch) and which version answered (0: the
// call failed).
type callRec struct {
	start int64
	ver   int8
}

// flipOutcome is the analysis of one route flip.
type flipOutcome struct {
	// Delay is the time from the flip (the Apply returning) to the end of
	// the last time bucket in which fewer than the wanted fraction of the
	// calls started went to the new version; 0 when every bucket met it.
	Delay time.Duration
	// LastOld is the time from the flip to the start of the last call
	// answered by another version (0 if none).
	LastOld time.Duration
	// Calls and Failed count the calls started in the window.
	Calls, Failed int
	// Switched is false when the window's last non-empty bucket still
	// missed the fraction (or the window had no call): the flip never
	// took effect, and Delay is the window's length.
	Switched bool
}

// analyzeFlip looks at the calls started in [from, until) (nanoseconds
// since the epoch), cut into buckets of width bucket from `from`: the flip
// has taken effect at the end of the last bucket in which the share of
// calls answered by version want is below frac (a failed call counts
// against it; an empty bucket counts as met). calls need not be sorted.
func analyzeFlip(calls []callRec, from, until int64, want int8, bucket time.Duration, frac float64) flipOutcome {
	var out flipOutcome
	b := int64(bucket)
	if b <= 0 || until <= from {
		return out
	}
	nb := int((until - from + b - 1) / b)
	total := make([]int, nb)
	good := make([]int, nb)
	lastOld := int64(-1)
	for _, c := range calls {
		if c.start < from || c.start >= until {
			continue
		}
		k := int((c.start - from) / b)
		total[k]++
		out.Calls++
		switch c.ver {
		case want:
			good[k]++
		case 0:
			out.Failed++
		default:
			lastOld = max(lastOld, c.start-from)
		}
	}
	if lastOld >= 0 {
		out.LastOld = time.Duration(lastOld)
	}
	last := -1     // last bucket below frac
	nonEmpty := -1 // last bucket with calls
	for k := range nb {
		if total[k] == 0 {
			continue
		}
		nonEmpty = k
		if float64(good[k]) < frac*float64(total[k]) {
			last = k
		}
	}
	out.Switched = nonEmpty >= 0 && last != nonEmpty
	if out.Switched {
		out.Delay = time.Duration(int64(last+1) * b)
	} else {
		out.Delay = time.Duration(until - from)
	}
	return out
}
