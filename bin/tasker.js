#!/usr/bin/env -S node --max-semi-space-size=2
// A small young generation keeps the resident size (and so the cost of every fork) down.
import '../dist/tasker/main.js';
