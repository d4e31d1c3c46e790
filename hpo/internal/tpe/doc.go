// Package tpe is goptuna v0.9.0's TPE sampler (github.com/c-bata/goptuna/tpe,
// MIT License, Copyright (c) 2019-2021 Masashi Shibata; see LICENSE),
// copied unchanged except that its two draws from math/rand's process-wide
// source (goptuna/internal/random) draw from the sampler's own seeded
// source (random.go). Upstream, those draws make the sampler's proposals
// differ from run to run whatever its seed, because Go 1.24 and later
// seed the process-wide source randomly and ignore rand.Seed; package hpo
// promises the same trials for the same seed on every backend.
package tpe
