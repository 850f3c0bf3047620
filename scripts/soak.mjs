#!/usr/bin/env node
// `npm run -s soak`: the long-run soak benchmark (src/bench/soak.ts), bundled first (see bundle.mjs).
import { runMain } from './bundle.mjs';

await runMain('src/bench/soak.ts', 'soak');
