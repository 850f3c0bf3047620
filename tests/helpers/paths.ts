import { resolve } from 'node:path';

/** The shared fixtures sit beside the repository (../shared), never inside it. */
export const REPO_ROOT = resolve(__dirname, '../..');
export const SHARED = resolve(REPO_ROOT, '../shared');
export const STORIES_260K = resolve(SHARED, 'models/stories260K');
export const GOLDEN_DIR = resolve(SHARED, 'golden');
