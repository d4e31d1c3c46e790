package serve

// SetDrainHook makes s call f when a drain has begun, before it stops
// accepting requests, so that tests can look at the server then.
func SetDrainHook(s *Server, f func()) { s.drainHook = f }

// Unregister forgets predictor name, so a test can register one for its
// own run without changing what other tests see.
func Unregister(name string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	delete(registry, name)
}
