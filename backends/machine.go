package backends

import "io"

// MachineConfigurer is implemented by backends that run tasks on the
// machine of the program itself (package local): the program
// entrypoint's run command calls it, before it runs anything, with what
// its flags say about the cache and the tasks' output, and runs on the
// backend it returns. A library call of pipeline.Run never calls it, so
// the backend's own Options stay the only defaults there.
type MachineConfigurer interface {
	// WithMachineConfig returns a backend configured by c; the receiver
	// is unchanged. Settings the backend was constructed with win over
	// c's defaults, but not over what c says was asked for explicitly.
	WithMachineConfig(c MachineConfig) Backend
}

// MachineConfig is what the program entrypoint's run command asks of a
// [MachineConfigurer].
type MachineConfig struct {
	// CacheDir, if set, is the cache directory asked for explicitly
	// (-cache-dir): it replaces the backend's own.
	CacheDir string
	// DefaultCacheDir is the cache directory to use when the backend has
	// none of its own: sluice/cache under the user's cache directory
	// (os.UserCacheDir), or empty when there is none.
	DefaultCacheDir string
	// NoCache turns the cache off (-no-cache), whatever else is set.
	NoCache bool
	// Log, if set, receives the tasks' output (a container task's stdout
	// and stderr, a Go task's panic) and the backend's progress lines,
	// each line prefixed with "[step] ", when the backend has no log of
	// its own. It is nil with -q.
	Log io.Writer
}
