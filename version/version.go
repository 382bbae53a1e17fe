// Package version holds the version of the chainstore binaries. make
// release stamps it at link time:
//
//	go build -ldflags "-X github.com/chainstore/chainstore/version.Version=v0.3.0"
//
// A binary built without the stamp reports "dev" followed by the VCS
// revision Go recorded, when there is one.
package version

import "runtime/debug"

// Version is set by the linker (-X); it is never written at run time.
var Version = ""

// String returns the stamped version, or "dev" plus the VCS revision.
func String() string {
	if Version != "" {
		return Version
	}
	v := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "-" + s.Value[:12]
			}
		}
	}
	return v
}
