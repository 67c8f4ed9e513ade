#!/usr/bin/env -S node --max-semi-space-size=2
// A small young generation keeps the resident size (and so the cost of every fork) down.
import { setFlagsFromString } from 'node:v8';

// V8 lets a heap grow to up to 4x what its last full collection kept before collecting again
// (measured: a tasker holding 30 MB reached 148 MB). 1.5x bounds the resident size by what is
// live, for a few more collections; V8 reads this flag at each collection, so it is set here.
setFlagsFromString('--heap-growing-percent=50');
await import('../dist/worker/main.js');
