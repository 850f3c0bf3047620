#!/usr/bin/env node
// Runs the webtune CLI from source (bundled first, see bundle.mjs).
import { runMain } from './bundle.mjs';

await runMain('src/cli/main.ts', 'webtune');
