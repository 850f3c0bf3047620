#!/usr/bin/env node
// `npm run -s check-heap -- <model folder>`: JS memory while a model's weights load (src/bench/heap-check.ts), bundled first.
import { runMain } from './bundle.mjs';

await runMain('src/bench/heap-check.ts', 'check-heap');
