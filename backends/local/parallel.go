package local

import (
	"runtime"
	"sync"
)

// minChunk is the least number of steps worth a goroutine of their own in
// forChunks: setting up a run costs well under a microsecond a step.
const minChunk = 16384

// numChunks is how many chunks of [0, n) forChunks should make: one, or
// up to GOMAXPROCS for a large n. Compile, Submit and the end of Watch run
// on one goroutine while the machine's other cores wait for the run's
// tasks, so they share out what they do for each of many steps.
func numChunks(n int) int { return max(1, min(runtime.GOMAXPROCS(0), n/minChunk)) }

// forChunks splits [0, n) into chunks consecutive chunks and calls f(k,
// lo, hi) for chunk k, [lo, hi), each on a goroutine of its own but the
// last, and returns when all calls have. f must be safe to call
// concurrently on distinct chunks.
func forChunks(n, chunks int, f func(k, lo, hi int)) {
	if chunks <= 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for k := range chunks - 1 {
		wg.Go(func() { f(k, k*n/chunks, (k+1)*n/chunks) })
	}
	f(chunks-1, (chunks-1)*n/chunks, n)
	wg.Wait()
}
