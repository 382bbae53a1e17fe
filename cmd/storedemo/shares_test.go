package main

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSharesReport(t *testing.T) {
	t.Parallel()
	s := newShares([]string{"v1", "v2", "canary"})
	for range 9 {
		s.answered("v1")
	}
	s.answered("v2")
	if got, want := s.report(12*time.Second+300*time.Millisecond), "t=12s  v1 90.0%  v2 10.0%  canary 0.0%  errors 0  (n=10)"; got != want {
		t.Errorf("report:\n got %q\nwant %q", got, want)
	}

	// A new window: the counts were reset; an unknown name gets a column
	// after the fixed ones, kept from then on; failures are counted apart.
	s.answered("v2")
	s.answered("backup")
	s.answered("backup")
	s.answered("aaa")
	s.failed("Unavailable: no children")
	s.skip()
	want := "t=13s  v1 0.0%  v2 25.0%  canary 0.0%  aaa 25.0%  backup 50.0%  errors 1  (n=5)  skipped 1  last error: Unavailable: no children"
	if got := s.report(13 * time.Second); got != want {
		t.Errorf("report:\n got %q\nwant %q", got, want)
	}
	if got, want := s.report(14*time.Second), "t=14s  v1 0.0%  v2 0.0%  canary 0.0%  aaa 0.0%  backup 0.0%  errors 0  (n=0)"; got != want {
		t.Errorf("empty window:\n got %q\nwant %q", got, want)
	}
}

func TestSharesNoFixedColumns(t *testing.T) {
	t.Parallel()
	s := newShares(nil)
	s.answered("b")
	s.answered("a")
	s.answered("a")
	if got, want := s.report(time.Second), "t=1s  a 66.7%  b 33.3%  errors 0  (n=3)"; got != want {
		t.Errorf("report:\n got %q\nwant %q", got, want)
	}
}

func TestSharesConcurrent(t *testing.T) {
	t.Parallel()
	s := newShares([]string{"v1"})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				s.answered("v1")
				s.failed("x")
			}
		})
	}
	wg.Wait()
	if got, want := s.report(0), "t=0s  v1 100.0%  errors 800  (n=1600)  last error: x"; got != want {
		t.Errorf("report:\n got %q\nwant %q", got, want)
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	if got := truncate("short", 10); got != "short" {
		t.Errorf("truncate(short) = %q", got)
	}
	long := strings.Repeat("é", 20)
	if got := truncate(long, 10); got != strings.Repeat("é", 7)+"..." {
		t.Errorf("truncate(long) = %q", got)
	}
}

func TestBootstrapConfig(t *testing.T) {
	t.Parallel()
	got, err := bootstrapConfig([]string{"127.0.0.1:1", "127.0.0.1:2"}, "n")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"xds_servers":[{"server_uri":"127.0.0.1:1","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]},` +
		`{"server_uri":"127.0.0.1:2","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],"node":{"id":"n","locality":{}}}`
	if got != want {
		t.Errorf("bootstrap:\n got %s\nwant %s", got, want)
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:0": true, "localhost:80": true, "[::1]:1": true,
		"0.0.0.0:80": false, "10.0.0.1:80": false, ":80": false, "nohost": false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}
