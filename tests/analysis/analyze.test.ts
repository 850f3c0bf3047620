import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeDataset, questionType, scoreConversation } from '../../src/analysis/analyze';
import { detectSignals, SIGNALS } from '../../src/analysis/signals';
import { TASK_IDS, type TaskId } from '../../src/analysis/tasks';
import type { DatasetRow, Message } from '../../src/data/types';
import { chat, loadSample } from './sample';

const RAG_SYSTEM = 'Answer from the context and cite sources.\n\nContext:\n[1] Refunds are issued within 5 days.\n[2] Plans renew monthly.';

describe('task analysis of chat_rag_sample.jsonl', () => {
  const rows = loadSample();
  const analysis = analyzeDataset(rows);
  const primary = analysis.perConversation.map((c) => c.primaryTask);
  const firstUser = (row: DatasetRow) => (row.kind === 'chat' ? row.messages.find((m) => m.role === 'user')!.content : '');
  const hasContext = (row: DatasetRow) =>
    row.kind === 'chat' && row.messages.some((m) => m.role === 'system' && m.content.includes('Context:'));

  it('has the 31 conversations', () => {
    expect(analysis.conversations).toBe(31);
  });

  it('labels every row as a person would', () => {
    const expected: TaskId[] = [
      ...Array<TaskId>(8).fill('rag_enhanced'),
      ...Array<TaskId>(5).fill('technical_implementation'),
      ...Array<TaskId>(6).fill('ai_ml_education'),
      ...Array<TaskId>(4).fill('conversational_chat'),
      ...Array<TaskId>(3).fill('code_generation'),
      'rag_enhanced',
      'rag_enhanced',
      'ai_ml_education',
      'technical_implementation',
      // "What plans do you offer?" / "Which one has SSO?": a short product chat without context.
      'conversational_chat',
    ];
    expect(primary).toEqual(expected);
  });

  it('labels the rows with a Context: system message rag_enhanced, and only those', () => {
    const withContext = rows.flatMap((row, i) => (hasContext(row) ? [i] : []));
    expect(withContext).toHaveLength(10);
    expect(analysis.ragIndices).toEqual(withContext);
    for (const i of withContext) expect(analysis.perConversation[i].scores.rag_enhanced).toBe(1);
  });

  it('labels the "Write a ... function/query" requests code_generation', () => {
    const requests = rows.flatMap((row, i) => (/^Write a .* (function|query)\b/.test(firstUser(row)) ? [i] : []));
    expect(requests).toEqual([23, 24, 25]);
    for (const i of requests) expect(primary[i]).toBe('code_generation');
  });

  it('labels the how-to questions without context technical_implementation', () => {
    const howTo = rows.flatMap((row, i) => (!hasContext(row) && /^How (do|can) I\b/.test(firstUser(row)) ? [i] : []));
    expect(howTo).toEqual([8, 9, 10, 11, 12, 29]);
    for (const i of howTo) expect(primary[i]).toBe('technical_implementation');
  });

  it('labels the "What is X" ML questions ai_ml_education', () => {
    const whatIs = rows.flatMap((row, i) => (!hasContext(row) && /^What is\b/.test(firstUser(row)) ? [i] : []));
    expect(whatIs).toEqual([13, 14, 15, 16, 17, 18, 28]);
    for (const i of whatIs) expect(primary[i]).toBe('ai_ml_education');
  });

  it('labels the greetings, thanks and small talk conversational_chat', () => {
    for (const i of [19, 20, 21, 22]) expect(primary[i]).toBe('conversational_chat');
    const fired = (i: number) => analysis.perConversation[i].signals.map((s) => s.id);
    expect(fired(19)).toContain('chat.greeting');
    expect(fired(20)).toContain('chat.thanks');
    expect(fired(21)).toContain('chat.small_talk');
    expect(fired(22)).toContain('chat.greeting');
  });

  it('reports the distribution: percent and mean score per task', () => {
    expect(analysis.distribution).toEqual({
      rag_enhanced: { count: 10, percent: 32.3, meanScore: 0.323 },
      code_generation: { count: 3, percent: 9.7, meanScore: 0.103 },
      technical_implementation: { count: 6, percent: 19.4, meanScore: 0.213 },
      ai_ml_education: { count: 7, percent: 22.6, meanScore: 0.255 },
      conversational_chat: { count: 5, percent: 16.1, meanScore: 0.132 },
    });
  });

  it('reports the average response length and the question types', () => {
    const responses = rows.flatMap((row) => (row.kind === 'chat' ? row.messages.filter((m) => m.role === 'assistant') : []));
    const mean = responses.reduce((sum, m) => sum + [...m.content.trim()].length, 0) / responses.length;
    expect(analysis.avgResponseChars).toBeCloseTo(mean, 1);
    // 32 user turns: 8 how-to (6 technical, 2 with context), 10 "What is/does" (7 ML, 3 with context).
    expect(analysis.questionTypes).toEqual({
      how_to: { count: 8, share: 0.25 },
      definition: { count: 10, share: 0.313 },
      other: { count: 14, share: 0.438 },
    });
  });

  // 10 RAG against 7 education (1.43x, 32.3%): shaped like the task decision guide's own dataset, so single-task RAG first.
  it('recommends starting single-task on rag_enhanced, the clear lead, with multi-task and progressive as next steps', () => {
    const { recommendation } = analysis;
    expect(recommendation).toMatchObject({
      strategy: 'single',
      presetIds: ['rag_enhanced'],
      tasks: ['rag_enhanced'],
      taskFilter: 'rag_enhanced',
    });
    expect(recommendation.reasons.join('\n')).toContain('no task reaches 70%');
    expect(recommendation.reasons.join('\n')).toContain('1.43x the conversations of the next task, ai_ml_education (7, 22.6%)');
    expect(recommendation.nextSteps.map((step) => [step.strategy, step.tasks])).toEqual([
      ['multi', ['rag_enhanced', 'ai_ml_education', 'technical_implementation', 'conversational_chat', 'code_generation']],
      ['progressive', ['conversational_chat', 'ai_ml_education', 'technical_implementation', 'code_generation', 'rag_enhanced']],
    ]);
  });

  it('is JSON-serialisable and deterministic', () => {
    const line = JSON.stringify(analysis);
    expect(JSON.parse(line)).toEqual(analysis);
    expect(JSON.stringify(analyzeDataset(loadSample()))).toBe(line);
  });
});

describe('each signal on its own', () => {
  const m = (role: Message['role'], content: string): Message => ({ role, content });
  const cases: Record<string, { fires: Message[][]; silent: Message[][] }> = {
    'rag.context_block': {
      fires: [
        [m('system', RAG_SYSTEM), m('user', 'When do refunds arrive?')],
        [m('user', 'Context:\n[1] The office opens at 9.\n\nWhen does the office open?')],
      ],
      silent: [[m('user', "Context: I'm building a web app. Which database should I use?")]],
    },
    'rag.citation': {
      fires: [[m('assistant', 'Refunds arrive within 5 days [1].')]],
      silent: [[m('assistant', 'Take the second item with `xs[1]`, or read [1](https://example.com).\n```python\nprint(xs[1])\n```')]],
    },
    'rag.attribution_phrase': {
      fires: [
        [m('assistant', 'According to the documentation, the limit is 5.')],
        [m('assistant', 'The pricing sheet [1] lists 10 seats.')],
      ],
      silent: [[m('assistant', 'Based on my experience, the limit is 5.')]],
    },
    'tech.how_to_question': {
      fires: [[m('user', 'How can I speed up my build?')], [m('user', "What's the best way to cache npm packages in CI?")]],
      silent: [[m('user', 'How are you?')], [m('user', 'Why is my build slow?')]],
    },
    'tech.numbered_steps': {
      fires: [[m('assistant', '1. Open the file.\n2. Save it.')], [m('assistant', 'Step 1: clone.\nStep 2: build.')]],
      silent: [[m('assistant', 'There are 2 options and 1. is fine.')]],
    },
    'tech.commands': {
      fires: [
        [m('assistant', 'Run `sudo apt-get install nginx`.')],
        [m('assistant', 'Check it:\n$ docker ps')],
        [m('assistant', '```bash\nmake build\n```')],
      ],
      silent: [[m('assistant', "Call `router.get('/')` in your app.")]],
    },
    'edu.definition_question': {
      fires: [[m('user', 'What does overfitting mean?')], [m('user', 'Explain attention to me.')], [m('user', 'What is a hash map?')]],
      silent: [[m('user', "What's the best way to learn?")], [m('user', 'What is your name?')]],
    },
    'edu.ml_topic': {
      fires: [[m('user', 'Tell me about embeddings.')], [m('user', 'Which learning rate suits LoRA?')]],
      silent: [[m('user', 'Tell me about gardening, I said.')]],
    },
    'edu.ml_explanation': {
      fires: [[m('assistant', 'Dropout regularizes a neural network by zeroing activations.')]],
      silent: [[m('assistant', 'Try a smaller learning rate.')]],
    },
    'chat.greeting': {
      fires: [[m('user', 'Hello there')], [m('user', 'good evening!')]],
      silent: [[m('user', 'Say hello to the new API.')]],
    },
    'chat.thanks': {
      fires: [[m('user', 'Thank you so much!')]],
      silent: [[m('user', 'Any Thanksgiving recipes?')]],
    },
    'chat.small_talk': {
      fires: [[m('user', 'Tell me a joke')], [m('user', 'Bye for now')]],
      silent: [[m('user', 'Tell me about SQL joins')]],
    },
    'chat.social_only_turn': {
      fires: [[m('user', 'Hey, good morning!')]],
      silent: [[m('user', 'Hi! How do I install Docker?')], [m('user', 'Thanks! Now write a function that sorts a list.')]],
    },
    'chat.brief_reply': {
      fires: [[m('user', 'Hi'), m('assistant', 'Hello! How can I help?')]],
      silent: [
        [m('assistant', 'Refunds take 5 days [1].')],
        [m('assistant', 'Use `ls`.')],
        [m('assistant', 'x'.repeat(200))],
        [m('user', 'Hi')],
      ],
    },
    'chat.multi_turn': {
      fires: [[m('user', 'Hi'), m('assistant', 'Hello!'), m('user', 'Which plan has SSO?'), m('assistant', 'Enterprise.')]],
      silent: [[m('user', 'Hi'), m('assistant', 'Hello!'), m('user', 'Anyone there?')]],
    },
    'code.request': {
      fires: [[m('user', 'Implement a binary search function in Go')], [m('user', 'Give me a regex for email addresses')]],
      silent: [[m('user', 'How do I write good commit messages?')]],
    },
    'code.code_block': {
      fires: [[m('assistant', '```ts\nconst x = 1;\n```')], [m('assistant', '~~~\nplain fence\n~~~')]],
      silent: [[m('assistant', '```bash\nnpm install\n```')], [m('assistant', 'Inline `code` only')]],
    },
    'code.language_named': {
      fires: [[m('user', 'Is Rust faster than C++?')], [m('user', 'A TypeScript question')]],
      silent: [[m('user', 'How do I learn Javanese?')]],
    },
  };

  it('has a case for every signal', () => {
    expect(Object.keys(cases).sort()).toEqual(SIGNALS.map((s) => s.id).sort());
  });

  it('are documented with their weights in src/analysis/README.md', () => {
    const readme = readFileSync(path.resolve(__dirname, '../../src/analysis/README.md'), 'utf8');
    for (const rule of SIGNALS) expect(readme).toContain(`| \`${rule.id}\` | ${rule.weight} |`);
  });

  for (const [id, { fires, silent }] of Object.entries(cases)) {
    it(`${id} fires on its pattern and stays silent on near misses`, () => {
      for (const messages of fires) {
        const fired = detectSignals(messages).find((s) => s.id === id);
        expect(fired, JSON.stringify(messages)).toBeDefined();
        expect(fired!.weight).toBe(SIGNALS.find((s) => s.id === id)!.weight);
        expect(fired!.evidence).toMatch(/^(system|user|assistant)\[\d+\]: |^\d+ /);
      }
      for (const messages of silent) {
        expect(
          detectSignals(messages).map((s) => s.id),
          JSON.stringify(messages),
        ).not.toContain(id);
      }
    });
  }

  it('scores a task as the sum of its fired weights, capped at 1', () => {
    const howTo = scoreConversation(chat(['user', 'How do I profile a slow query?'], ['assistant', '1. Run EXPLAIN.\n2. Add an index.']));
    expect(howTo.signals.map((s) => [s.id, s.weight])).toEqual([
      ['tech.how_to_question', 0.5],
      ['tech.numbered_steps', 0.3],
    ]);
    expect(howTo.scores).toEqual({
      rag_enhanced: 0,
      code_generation: 0,
      technical_implementation: 0.8,
      ai_ml_education: 0,
      conversational_chat: 0,
    });
    const rag = scoreConversation(
      chat(['system', RAG_SYSTEM], ['user', 'When?'], ['assistant', 'According to the refund policy [1], within 5 days.']),
    );
    expect(rag.scores.rag_enhanced).toBe(1);
  });

  it('calls a conversation with no signal at all chat', () => {
    const plain = scoreConversation(chat(['user', 'Paris.'], ['assistant', 'x'.repeat(300)]));
    expect(plain.signals).toEqual([]);
    expect(plain.primaryTask).toBe('conversational_chat');
  });
});

describe('mixed conversations', () => {
  it('a RAG answer with a code block is RAG first and code second', () => {
    const c = scoreConversation(
      chat(
        ['system', 'Use the context.\n\nContext:\n[1] API reference: GET /v1/items lists items; pass the key in the Authorization header.'],
        ['user', 'How do I list items from Python?'],
        [
          'assistant',
          'According to the API reference [1], send a GET request:\n```python\nrequests.get(url, headers={"Authorization": key})\n```',
        ],
      ),
    );
    expect(c.primaryTask).toBe('rag_enhanced');
    expect(c.scores.rag_enhanced).toBe(1);
    expect(c.scores.code_generation).toBe(0.5);
    expect(c.scores.technical_implementation).toBe(0.5);
  });

  it('a greeting followed by a how-to is technical first, with a chat score', () => {
    const c = scoreConversation(
      chat(
        ['user', 'Hi there!'],
        ['assistant', 'Hello! What can I do for you?'],
        ['user', 'How do I install Docker on Ubuntu?'],
        ['assistant', '1. Run `sudo apt-get update`.\n2. Run `sudo apt-get install docker.io`.\n3. Check it with `docker --version`.'],
      ),
    );
    expect(c.primaryTask).toBe('technical_implementation');
    expect(c.scores.technical_implementation).toBe(1);
    expect(c.scores.conversational_chat).toBe(0.9);
    expect(c.signals.filter((s) => s.task === 'conversational_chat').map((s) => s.id)).toEqual([
      'chat.greeting',
      'chat.social_only_turn',
      'chat.multi_turn',
    ]);
  });

  it('a greeting inside a how-to question counts less than a greeting on its own', () => {
    const c = scoreConversation(
      chat(['user', 'Hi! How do I install Docker?'], ['assistant', '1. Run `sudo apt-get install docker.io`.\n2. Start it.']),
    );
    expect(c.primaryTask).toBe('technical_implementation');
    expect(c.scores.conversational_chat).toBe(0.4);
  });

  it('a how-to about LoRA is technical with a strong education score', () => {
    const c = scoreConversation(
      chat(
        ['user', 'How do I fine-tune Llama with LoRA?'],
        ['assistant', '1. Install it with `pip install peft`.\n2. Set the rank and the learning rate.\n3. Train for a few epochs.'],
      ),
    );
    expect(c.primaryTask).toBe('technical_implementation');
    expect(c.scores.ai_ml_education).toBe(0.7);
  });

  it('ties go to the more specific task', () => {
    const c = scoreConversation(chat(['user', 'How do I write a function that parses dates?'], ['assistant', 'Use a library.']));
    expect(c.scores.technical_implementation).toBe(c.scores.code_generation);
    expect(c.primaryTask).toBe('code_generation');
  });
});

describe('other row kinds and question types', () => {
  it('reads a completion as a prompt and its answer, and text as a response', () => {
    const analysis = analyzeDataset([
      {
        kind: 'completion',
        prompt: 'Write a Python function that adds two numbers.',
        completion: '```python\ndef add(a, b):\n    return a + b\n```',
      },
      { kind: 'text', text: '1. Run `npm ci`.\n2. Run `npm test`.' },
    ]);
    expect(analysis.perConversation.map((c) => c.primaryTask)).toEqual(['code_generation', 'technical_implementation']);
    expect(analysis.questionTypes.other.count).toBe(1);
  });

  it('classifies user questions as how-to, definition or other', () => {
    expect(questionType('How should I structure my repo?')).toBe('how_to');
    expect(questionType('What is the best way to back up Postgres?')).toBe('how_to');
    expect(questionType('What’s a tensor?')).toBe('definition');
    expect(questionType('Which plan has SSO?')).toBe('other');
  });

  it('handles an empty dataset', () => {
    const analysis = analyzeDataset([]);
    expect(analysis.conversations).toBe(0);
    expect(analysis.avgResponseChars).toBe(0);
    expect(analysis.recommendation).toMatchObject({ strategy: 'single', presetIds: [] });
    for (const task of TASK_IDS) expect(analysis.distribution[task]).toEqual({ count: 0, percent: 0, meanScore: 0 });
  });
});
