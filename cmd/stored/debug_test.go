package main

import (
	"io"
	"net/http"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestDebugOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		wantErr bool
	}{
		{name: "off", addr: ""},
		{name: "ipv4 loopback", addr: "127.0.0.1:6060"},
		{name: "ipv6 loopback", addr: "[::1]:6060"},
		{name: "localhost", addr: "localhost:6060"},
		{name: "wildcard", addr: "0.0.0.0:6060", wantErr: true},
		{name: "empty host", addr: ":6060", wantErr: true},
		{name: "lan address", addr: "10.0.0.1:6060", wantErr: true},
		{name: "no port", addr: "127.0.0.1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := debugOptions{PprofAddr: tc.addr}.validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("validate(%q) = %v, want error: %v", tc.addr, err, tc.wantErr)
			}
		})
	}
}

func TestStartDebugServesPprof(t *testing.T) {
	addr, stop, err := startDebug(debugOptions{PprofAddr: "127.0.0.1:0"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("startDebug: %v", err)
	}
	t.Cleanup(stop)
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatalf("GET cmdline: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("GET cmdline: status %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestStartDebugOff(t *testing.T) {
	addr, stop, err := startDebug(debugOptions{}, hclog.NewNullLogger())
	if err != nil || stop == nil || addr != "" {
		t.Fatalf("startDebug(off) = %q, stop nil: %v, %v; want \"\", a no-op stop, no error", addr, stop == nil, err)
	}
	stop()
}
