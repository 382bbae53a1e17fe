package fsm

import (
	"fmt"
	"testing"

	"github.com/chainstore/chainstore/chain"
)

// benchCommandEntries are the entries of BenchmarkDecodeCommand and
// BenchmarkEncodeCommand: a service-defaults entry of about 512 bytes of
// canonical JSON (storebench's default payload size) and a router with
// three routes.
func benchCommandEntries(b *testing.B) map[string]chain.Entry {
	b.Helper()
	sd := &chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults, Name: "bench-service-0042", Protocol: "http", Meta: map[string]string{}}
	for i := 0; ; i++ {
		js, err := chain.EncodeEntry(sd)
		if err != nil {
			b.Fatal(err)
		}
		if len(js) >= 512 {
			break
		}
		sd.Meta[fmt.Sprintf("key-%02d", i)] = "value-abcdefghijklmnopqrstuvwxyz"
	}
	router, err := chain.DecodeEntry([]byte(`{"Kind":"service-router","Name":"web","Routes":[
	  {"Match":{"HTTP":{"PathPrefix":"/api","Header":[{"Name":"x-debug","Present":true},{"Name":"x-env","Exact":"prod"}],"Methods":["GET","POST"]}},
	   "Destination":{"Service":"api","PrefixRewrite":"/","RequestTimeout":"5s","NumRetries":3,"RetryOnConnectFailure":true,"RetryOnStatusCodes":[503]}},
	  {"Match":{"HTTP":{"PathExact":"/billing","QueryParam":[{"Name":"user","Exact":"alice"}]}},"Destination":{"Service":"billing"}},
	  {"Match":{"HTTP":{"PathRegex":"/legacy/.*"}},"Destination":{"Service":"api","ServiceSubset":"v2","RequestHeaders":{"Add":{"x-route":"legacy"}}}}]}`))
	if err != nil {
		b.Fatal(err)
	}
	return map[string]chain.Entry{"service-defaults-512B": sd, "router": router}
}

// BenchmarkDecodeCommand measures DecodeCommand of an upsert, the work
// every replica does once per write before apply.
func BenchmarkDecodeCommand(b *testing.B) {
	for name, e := range benchCommandEntries(b) {
		data, err := EncodeCommand(Command{Op: OpUpsert, Entry: e})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := DecodeCommand(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeCommand measures EncodeCommand of an upsert (the leader,
// once per write).
func BenchmarkEncodeCommand(b *testing.B) {
	for name, e := range benchCommandEntries(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeCommand(Command{Op: OpUpsert, Entry: e}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
