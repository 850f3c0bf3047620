import { chatSettingsFromConfig } from '../data/chat-template';
import { type PrepTokenizer, type PreparedDataset, prepareDataset } from '../data/prepare';
import type { DatasetRow } from '../data/types';
import type { OpenedModel } from '../model/weights';
import { TextTokenizer } from '../model/tokenizer';
import type { TrainSettings } from './settings';

/** The tokenizer and chat template a model's files define, ready for data preparation. */
export function prepTokenizerFor(opened: Pick<OpenedModel, 'tokenizerJson' | 'tokenizerConfig'>): PrepTokenizer {
  return {
    tokenizer: TextTokenizer.fromJson(opened.tokenizerJson, opened.tokenizerConfig),
    ...chatSettingsFromConfig(opened.tokenizerConfig),
  };
}

/** Padding only fills right ends whose labels are -100, so any valid id works; prefer the model's own. */
export function padTokenId(tok: PrepTokenizer): number {
  return tok.tokenizer.eosTokenIds[0] ?? 0;
}

/**
 * Training and evaluation examples for a run: a separate eval file when given, otherwise a
 * held-out share of the training rows.
 */
export function prepareRunData(
  rows: readonly DatasetRow[],
  evalRows: readonly DatasetRow[] | null,
  tok: PrepTokenizer,
  settings: Pick<TrainSettings, 'maxLength' | 'packing' | 'evalFraction' | 'seed'>,
): PreparedDataset {
  const opts = { maxLength: settings.maxLength, packing: settings.packing, seed: settings.seed };
  if (!evalRows) return prepareDataset(rows, tok, { ...opts, evalFraction: settings.evalFraction });
  const train = prepareDataset(rows, tok, { ...opts, evalFraction: 0 });
  const held = prepareDataset(evalRows, tok, { ...opts, packing: false, evalFraction: 0 });
  return {
    train: train.train,
    eval: held.train,
    truncatedCount: train.truncatedCount + held.truncatedCount,
    droppedNoTargets: train.droppedNoTargets + held.droppedNoTargets,
  };
}
