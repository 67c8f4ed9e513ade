#!/usr/bin/env -S node --max-semi-space-size=16
// The worker forks no command itself (bash runners do, shared/exec/shell-runner.ts), so its size
// costs no fork. A young generation of 16 MB and a heap that grows to 2x what its last full
// collection kept: measured on 20,000 x `true` through 4 workers (bench/cpu-split.sh, A/B), 7% less
// CPU per command than 2 MB and 1.5x (0.825 -> 0.766 ms), for a peak resident size of 105 MB
// instead of 77.
import { setFlagsFromString } from 'node:v8';

// V8 reads this flag at each collection, so it is set here (the default lets a heap grow to 4x).
setFlagsFromString('--heap-growing-percent=100');
await import('../dist/worker/main.js');
