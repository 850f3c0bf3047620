import 'fake-indexeddb/auto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { AdapterTensors } from '../../src/export/adapter';
import { peftAdapterFiles } from '../../src/export/peft';
import { zipFiles } from '../../src/export/zip';
import { createNodeDevice } from '../../src/gpu/node-device';
import { WebtuneEngine } from '../../src/app/engine';
import { STORIES_260K } from '../helpers/paths';
import { freshDbName } from '../storage/fixtures';

/** The model folder as a folder picker hands it over. */
export function modelFiles() {
  return readdirSync(STORIES_260K).map((name) => ({
    path: `stories260K/${name}`,
    file: new File([readFileSync(join(STORIES_260K, name))], name),
  }));
}

/** An engine on Dawn with a fresh database and stories260K loaded; `dbName` opens the same records directly. */
export async function engineWithStories() {
  const dbName = freshDbName();
  const engine = new WebtuneEngine({ requestDevice: createNodeDevice, dbName, historyFlushMs: 0 });
  expect((await engine.init()).state).toBe('ready');
  await engine.loadLocalModel(modelFiles(), 'stories260K');
  return { engine, dbName };
}

const blob = (bytes: Uint8Array) => new Blob([bytes as Uint8Array<ArrayBuffer>]);

/** An adapter's PEFT folder as files picked from a folder named `folder`. */
export function peftFolderEntries(
  adapter: AdapterTensors,
  folder: string,
  files = peftAdapterFiles(adapter, { baseModel: 'stories260K' }),
) {
  return Object.entries(files).map(([name, bytes]) => ({ path: `${folder}/${name}`, file: blob(bytes) }));
}

/** An adapter's PEFT folder zipped, as a File named `fileName`. */
export function peftZip(adapter: AdapterTensors, fileName: string): File {
  return new File([zipFiles(peftAdapterFiles(adapter, { baseModel: 'stories260K' })) as Uint8Array<ArrayBuffer>], fileName);
}
