package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a progress bar on a terminal while a run is going:
//
//	put [#########...........]  45%  4500/10000  1234 req/s  3s
//
// It draws nothing for runs that finish within the delay, and nothing at
// all when disabled (stderr is not a terminal, or --progress=false).
type progress struct {
	w      io.Writer
	label  string
	total  int64
	done   atomic.Int64
	start  time.Time
	stopCh chan struct{}
	wg     sync.WaitGroup
	drawn  bool // only touched by the drawing goroutine and stop (after join)
}

// progressDelay: runs shorter than this never show a bar.
const progressDelay = time.Second

// newProgress starts the drawing goroutine when enabled; stop joins it.
func newProgress(w io.Writer, enabled bool, label string, total int) *progress {
	p := &progress{w: w, label: label, total: int64(total), start: time.Now(), stopCh: make(chan struct{})}
	if !enabled || total <= 0 {
		return p
	}
	p.wg.Add(1)
	go p.loop()
	return p
}

// add records n completed operations.
func (p *progress) add(n int) { p.done.Add(int64(n)) }

func (p *progress) loop() {
	defer p.wg.Done()
	delay := time.NewTimer(progressDelay)
	defer delay.Stop()
	select {
	case <-delay.C:
	case <-p.stopCh:
		return
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		p.draw()
		select {
		case <-t.C:
		case <-p.stopCh:
			return
		}
	}
}

func (p *progress) draw() {
	p.drawn = true
	fmt.Fprint(p.w, "\r"+p.line(p.done.Load(), time.Since(p.start)))
}

// line renders the bar for done operations after elapsed.
func (p *progress) line(done int64, elapsed time.Duration) string {
	const width = 30
	frac := float64(done) / float64(p.total)
	frac = min(max(frac, 0), 1)
	n := int(frac * width)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	return fmt.Sprintf("%s [%s%s] %3.0f%%  %d/%d  %.0f/s  %s ",
		p.label, strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, done, p.total, rate,
		elapsed.Round(time.Second))
}

// stop ends the bar and clears its line.
func (p *progress) stop() {
	select {
	case <-p.stopCh:
		return
	default:
	}
	close(p.stopCh)
	p.wg.Wait()
	if p.drawn {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", 100)+"\r")
	}
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
