package main

import (
	"runtime/debug"
	"strings"
)

// version, when set at build time with -ldflags "-X main.version=...",
// replaces the module version the build info records.
var version string

// buildVersion is what this binary says it is: the module version (or
// version), and the VCS revision, commit time and whether the tree was
// modified when the build recorded them.
type buildVersion struct {
	version, revision, time string
	modified                bool
}

// readVersion reads bi, which may be nil (no build info); override, when
// set, is the version.
func readVersion(bi *debug.BuildInfo, override string) buildVersion {
	var v buildVersion
	if bi != nil {
		v.version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.revision = s.Value
				if len(v.revision) > 12 {
					v.revision = v.revision[:12]
				}
			case "vcs.time":
				v.time = s.Value
			case "vcs.modified":
				v.modified = s.Value == "true"
			}
		}
	}
	if override != "" {
		v.version = override
	}
	if v.version == "" {
		v.version = "(devel)" // what go build records without a module version
	}
	return v
}

// String is the version line's words after "filestage": v1.2.0
// (0123456789ab, 2026-01-02T03:04:05Z, modified), or as much as is known.
func (v buildVersion) String() string {
	var vcs []string
	for _, s := range []string{v.revision, v.time} {
		if s != "" {
			vcs = append(vcs, s)
		}
	}
	if v.modified {
		vcs = append(vcs, "modified")
	}
	if len(vcs) == 0 {
		return v.version
	}
	return v.version + " (" + strings.Join(vcs, ", ") + ")"
}

// thisVersion is this binary's version.
func thisVersion() buildVersion {
	bi, _ := debug.ReadBuildInfo()
	return readVersion(bi, version)
}
