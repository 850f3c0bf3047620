/**
 * Share links: a setup (model, datasets, preset and settings) in the URL fragment, which browsers
 * never send to a server. The fragment is a query string, readable by whoever gets the link:
 *
 *   #webtune=1&model=hub:owner/name&train=url:https://host/zog.jsonl&eval=hub:owner/name:test
 *     &preset=rag_enhanced&filter=40-800&r=8&alpha=16&dropout=0&targets=q_proj,k_proj,v_proj&rslora=0
 *     &lr=0.005&epochs=4&batchSize=4&gradAccum=1&warmupSteps=0&schedule=linear&weightDecay=0&maxGradNorm=1
 *     &maxLength=32&packing=0&evalFraction=0.1&evalEvery=6&checkpointEvery=10&seed=42
 *
 * `webtune=1` is the format version. Decoding is strict, since a link can come from anyone: every
 * key at most once and known, every value matched against its exact grammar, the settings through
 * validateTrainSettings, URLs https (or this site), and the whole fragment bounded in length. A
 * fragment that fails is refused with the reason; nothing in it is ever run or rendered as HTML.
 */
import { LORA_TARGETS, type LoraTarget } from '../lora/config';
import { parseDatasetSource, datasetSourceString } from '../app/dataset-sources';
import type { ModelRef } from '../app/download-plan';
import { modelFolderUrl, REPO_ID } from '../app/hub';
import { type TrainSettings, validateTrainSettings } from '../train/settings';

export const SHARE_FORMAT_VERSION = 1;
const MAX_FRAGMENT_LENGTH = 8192;
const PRESET_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const INTEGER = /^\d{1,9}$/;

export interface SharedPreset {
  id: string;
  minResponseChars: number;
  maxResponseChars: number;
}

export interface SharedSetup {
  model: ModelRef | null;
  /** Dataset sources, `url:<URL>` or `hub:<reference>`. */
  train: string | null;
  eval: string | null;
  preset: SharedPreset | null;
  settings: TrainSettings;
}

export class ShareLinkError extends Error {
  override name = 'ShareLinkError';
  constructor(problem: string) {
    super(`This share link cannot be opened: ${problem}. Nothing was downloaded; ask for a new link.`);
  }
}

type SettingKey = Exclude<keyof TrainSettings, 'lora'>;
const NUMBER_SETTINGS = [
  'lr',
  'epochs',
  'batchSize',
  'gradAccum',
  'warmupSteps',
  'weightDecay',
  'maxGradNorm',
  'maxLength',
  'evalFraction',
  'evalEvery',
  'checkpointEvery',
  'seed',
] as const satisfies readonly SettingKey[];
const KEYS = new Set<string>([
  'webtune',
  'model',
  'train',
  'eval',
  'preset',
  'filter',
  'r',
  'alpha',
  'dropout',
  'targets',
  'rslora',
  'schedule',
  'packing',
  ...NUMBER_SETTINGS,
]);

/** True when a fragment is meant as a share link (others, such as an in-page anchor, are left alone). */
export function isShareFragment(hash: string): boolean {
  return /^#?webtune=/.test(hash);
}

export function encodeShareLink(setup: SharedSetup): string {
  const s = setup.settings;
  const params = new URLSearchParams({ webtune: String(SHARE_FORMAT_VERSION) });
  if (setup.model) params.set('model', setup.model.kind === 'hub' ? `hub:${setup.model.id}` : `url:${setup.model.url}`);
  if (setup.train) params.set('train', setup.train);
  if (setup.eval) params.set('eval', setup.eval);
  if (setup.preset) {
    params.set('preset', setup.preset.id);
    params.set('filter', `${setup.preset.minResponseChars}-${setup.preset.maxResponseChars}`);
  }
  params.set('r', String(s.lora.r));
  params.set('alpha', String(s.lora.alpha));
  params.set('dropout', String(s.lora.dropout));
  params.set('targets', s.lora.targets.join(','));
  params.set('rslora', s.lora.useRslora ? '1' : '0');
  params.set('schedule', s.schedule);
  params.set('packing', s.packing ? '1' : '0');
  for (const key of NUMBER_SETTINGS) params.set(key, String(s[key]));
  // Commas and colons are safe in a fragment; left unescaped the link stays readable.
  return `#${params.toString().replace(/%2C/g, ',').replace(/%3A/g, ':').replace(/%2F/g, '/')}`;
}

export function decodeShareLink(hash: string, pageOrigin: string): SharedSetup {
  const text = hash.replace(/^#/, '');
  if (text.length > MAX_FRAGMENT_LENGTH) throw new ShareLinkError(`it is ${text.length} characters long, more than ${MAX_FRAGMENT_LENGTH}`);
  const values = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(text)) {
    if (!KEYS.has(key)) throw new ShareLinkError(`it has an unknown field "${clip(key)}"`);
    if (values.has(key)) throw new ShareLinkError(`it names "${key}" twice`);
    values.set(key, value);
  }
  const version = values.get('webtune');
  if (version !== String(SHARE_FORMAT_VERSION)) {
    throw new ShareLinkError(
      version && INTEGER.test(version) && Number(version) > SHARE_FORMAT_VERSION
        ? `it was made by a newer webtune (format ${version}); reload the page to get the newest version`
        : `its format "${clip(version ?? '')}" is not one this webtune reads (${SHARE_FORMAT_VERSION})`,
    );
  }
  const number = (key: string, integer: boolean): number | undefined => {
    const raw = values.get(key);
    if (raw === undefined) return undefined;
    if (!(integer ? INTEGER : DECIMAL).test(raw)) {
      throw new ShareLinkError(`"${key}" must be ${integer ? 'a whole number' : 'a number'}, got "${clip(raw)}"`);
    }
    return Number(raw);
  };
  const flag = (key: string): boolean | undefined => {
    const raw = values.get(key);
    if (raw === undefined) return undefined;
    if (raw !== '0' && raw !== '1') throw new ShareLinkError(`"${key}" must be 0 or 1, got "${clip(raw)}"`);
    return raw === '1';
  };
  const targetsText = values.get('targets');
  let targets: LoraTarget[] | undefined;
  if (targetsText !== undefined) {
    const list = targetsText.split(',');
    for (const t of list) {
      if (!(LORA_TARGETS as readonly string[]).includes(t)) {
        throw new ShareLinkError(`"targets" names "${clip(t)}", which is not one of ${LORA_TARGETS.join(', ')}`);
      }
    }
    if (new Set(list).size !== list.length) throw new ShareLinkError('"targets" names a projection twice');
    targets = list as LoraTarget[];
  }
  const schedule = values.get('schedule');
  if (schedule !== undefined && !['linear', 'cosine', 'constant'].includes(schedule)) {
    throw new ShareLinkError(`"schedule" must be linear, cosine or constant, got "${clip(schedule)}"`);
  }
  let settings: TrainSettings;
  try {
    settings = validateTrainSettings({
      ...Object.fromEntries(
        NUMBER_SETTINGS.map((key) => [key, number(key, key !== 'lr' && !/^(weightDecay|maxGradNorm|evalFraction)$/.test(key))]),
      ),
      schedule: schedule as TrainSettings['schedule'] | undefined,
      packing: flag('packing'),
      lora: { r: number('r', true), alpha: number('alpha', false), dropout: number('dropout', false), targets, useRslora: flag('rslora') },
    });
  } catch (error) {
    if (error instanceof ShareLinkError) throw error;
    throw new ShareLinkError((error as Error).message);
  }
  return {
    model: modelRef(values.get('model'), pageOrigin),
    train: dataset('train', values.get('train'), pageOrigin),
    eval: dataset('eval', values.get('eval'), pageOrigin),
    preset: preset(values.get('preset'), values.get('filter')),
    settings,
  };
}

function modelRef(raw: string | undefined, pageOrigin: string): ModelRef | null {
  if (raw === undefined) return null;
  if (raw.startsWith('hub:')) {
    const id = raw.slice(4);
    if (!REPO_ID.test(id)) throw new ShareLinkError(`the model "${clip(id)}" is not a Hugging Face model id ("org/name")`);
    return { kind: 'hub', id };
  }
  if (raw.startsWith('url:')) {
    try {
      return { kind: 'url', url: modelFolderUrl(raw.slice(4), pageOrigin).href };
    } catch (error) {
      throw new ShareLinkError((error as Error).message.replace(/\.$/, ''));
    }
  }
  throw new ShareLinkError(`the model must be "hub:org/name" or "url:https://…", got "${clip(raw)}"`);
}

function dataset(key: string, raw: string | undefined, pageOrigin: string): string | null {
  if (raw === undefined) return null;
  if (!/^(url|hub):/.test(raw)) throw new ShareLinkError(`"${key}" must be "url:https://…" or "hub:owner/name", got "${clip(raw)}"`);
  try {
    return datasetSourceString(parseDatasetSource(raw, pageOrigin));
  } catch (error) {
    throw new ShareLinkError(`"${key}": ${(error as Error).message.replace(/\.$/, '')}`);
  }
}

function preset(id: string | undefined, filter: string | undefined): SharedPreset | null {
  if (id === undefined && filter === undefined) return null;
  if (id === undefined || !PRESET_ID.test(id)) throw new ShareLinkError(`"preset" must be a preset id, got "${clip(id ?? '')}"`);
  const bounds = /^(\d{1,9})-(\d{1,9})$/.exec(filter ?? '');
  if (!bounds) throw new ShareLinkError(`"filter" must be "<min>-<max>" response characters, got "${clip(filter ?? '')}"`);
  const [minResponseChars, maxResponseChars] = [Number(bounds[1]), Number(bounds[2])];
  if (minResponseChars > maxResponseChars) throw new ShareLinkError('"filter" has its minimum above its maximum');
  return { id, minResponseChars, maxResponseChars };
}

/** Values from a link are quoted in messages, never more than a few dozen characters of them. */
function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
