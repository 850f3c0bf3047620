import { describe, expect, it } from 'vitest';
import { escapeHtml, type ReportData, reportHtml } from '../../src/site/report-html';
import { validateLoraConfig } from '../../src/lora/config';

const HOSTILE = '<script>alert("x")</script><img src=https://evil.example/x.png>';
const PNG = `data:image/png;base64,${btoa('\x89PNG fake')}`;

function data(overrides: Partial<ReportData> = {}): ReportData {
  return {
    generatedAt: new Date('2026-12-01T10:00:00Z'),
    run: {
      name: HOSTILE,
      status: 'completed',
      step: 24,
      totalSteps: 24,
      createdAt: 0,
      model: { id: 'stories260K', source: 'url', architecture: 'llama', parameterCount: 260_000 },
      settings: { lora: validateLoraConfig({ r: 8, alpha: 16 }), training: { lr: 0.005, epochs: 4 } },
      filter: null,
    },
    finalTrainLoss: 0.0412,
    finalEvalLoss: 0.0406,
    history: [
      { step: 0, epoch: 0, evalLoss: 1.6919, lr: 0, elapsedMs: 0 },
      { step: 1, epoch: 0.25, loss: 1.69, lr: 0.005, elapsedMs: 1000 },
    ],
    modelSource: HOSTILE,
    train: { name: HOSTILE, rows: 24, from: 'https://site.example/zog.jsonl' },
    evalData: null,
    presetId: null,
    chartPng: PNG,
    evaluation: null,
    comparison: {
      prompt: 'Once upon a time',
      base: HOSTILE,
      adapted: ' dragon named Zog',
      maxNewTokens: 32,
      temperature: 0,
      adapterScale: 1,
    },
    ...overrides,
  };
}

describe('the run report', () => {
  it('escapes every piece of user content, so the file shows it and never runs or fetches it', () => {
    const html = reportHtml(data());
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img src=https');
    expect(html).toContain(escapeHtml(HOSTILE));
    expect(html).toContain(`content="default-src 'none'; img-src data:; style-src 'unsafe-inline'"`);
    expect(html.match(/<img /g)).toHaveLength(1);
    expect(html).toContain(`src="${PNG}"`);
  });

  it('holds the run figures and the comparison', () => {
    const html = reportHtml(data());
    expect(html).toContain('<td>24 of 24 (completed)</td>');
    expect(html).toContain('<td>Eval loss before training</td><td>1.6919</td>');
    expect(html).toContain('<td>Eval loss after training</td><td>0.0406</td>');
    expect(html).toContain('<b> dragon named Zog</b>');
    expect(html).toContain('No before/after evaluation was run in this session.');
  });

  it('refuses a chart that is not a PNG data URL', () => {
    expect(() => reportHtml(data({ chartPng: 'javascript:alert(1)' }))).toThrow('not a PNG image');
    expect(() => reportHtml(data({ chartPng: `${PNG}" onerror="x` }))).toThrow('not a PNG image');
  });
});
