#!/usr/bin/env node
// `npm run -s bench`: the training-step benchmark (src/bench/main.ts), bundled first (see bundle.mjs).
import { runMain } from './bundle.mjs';

await runMain('src/bench/main.ts', 'bench');
