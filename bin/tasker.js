#!/usr/bin/env node
import '../dist/tasker/main.js';
