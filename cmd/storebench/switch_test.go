package main

import (
	"testing"
	"time"
)

func TestAnalyzeFlip(t *testing.T) {
	ms := func(n float64) int64 { return int64(n * float64(time.Millisecond)) }
	// 20 callers, one call every ms each, from -5 ms to 100 ms; caller i
	// switches to version 2 at i*2 ms after the flip at 0.
	var calls []callRec
	for i := range 20 {
		for at := -5; at < 100; at++ {
			v := int8(1)
			if at >= 2*i {
				v = 2
			}
			calls = append(calls, callRec{start: ms(float64(at) + float64(i)/100), ver: v})
		}
	}
	// 95 %: the 1 ms bucket at k ms has floor(k/2)+1 of 20 calls on v2;
	// 19/20 is first reached at 36 ms, so the last failing bucket is
	// [35, 36) ms.
	got := analyzeFlip(calls, 0, ms(100), 2, time.Millisecond, 0.95)
	if !got.Switched || got.Delay != 36*time.Millisecond {
		t.Errorf("95%%: %+v, want switched after 36ms", got)
	}
	if got.LastOld != time.Duration(ms(37.19)) || got.Calls != 2000 || got.Failed != 0 {
		t.Errorf("95%%: last old %s, calls %d, failed %d; want 37.19ms, 2000, 0", got.LastOld, got.Calls, got.Failed)
	}
	// 100 %: the last bucket with an old call is 37 ms.
	if got := analyzeFlip(calls, 0, ms(100), 2, time.Millisecond, 1); got.Delay != 38*time.Millisecond {
		t.Errorf("100%%: %+v, want 38ms", got)
	}
	// 10 ms buckets: [30, 40) has old calls from callers 15..19.
	if got := analyzeFlip(calls, 0, ms(100), 2, 10*time.Millisecond, 0.95); got.Delay != 40*time.Millisecond {
		t.Errorf("10ms buckets: %+v, want 40ms", got)
	}
	// Flipping back to version 1 never happened: not switched.
	if got := analyzeFlip(calls, 0, ms(100), 1, time.Millisecond, 0.95); got.Switched || got.Delay != 100*time.Millisecond {
		t.Errorf("wrong version: %+v, want not switched, delay = window", got)
	}
	// Already switched before the flip: delay 0.
	if got := analyzeFlip(calls, ms(50), ms(100), 2, time.Millisecond, 0.95); !got.Switched || got.Delay != 0 || got.LastOld != 0 {
		t.Errorf("already switched: %+v, want delay 0", got)
	}
	// Failed calls count against the fraction, and are counted.
	failed := append([]callRec{{start: ms(60.5), ver: 0}, {start: ms(60.6), ver: 0}}, calls...)
	if got := analyzeFlip(failed, 0, ms(100), 2, time.Millisecond, 0.95); got.Delay != 61*time.Millisecond || got.Failed != 2 {
		t.Errorf("failures: %+v, want delay 61ms, 2 failed", got)
	}
	// No calls at all.
	if got := analyzeFlip(nil, 0, ms(10), 2, time.Millisecond, 0.95); got.Switched || got.Calls != 0 {
		t.Errorf("no calls: %+v", got)
	}
}
