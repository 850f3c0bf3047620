/**
 * The rules that score a conversation for each task. Every rule is a named signal with a fixed
 * weight; a task's score is the sum of the weights of its signals that fired, capped at 1. The
 * weights and the reasoning behind them are listed in src/analysis/README.md.
 */
import type { Message } from '../data/types';
import { citedSources } from '../eval/rag-metrics';
import type { TaskId } from './tasks';

export interface FiredSignal {
  id: string;
  task: TaskId;
  weight: number;
  /** Which turn fired it (`user[1]` is messages[1]) and what matched there. */
  evidence: string;
}

export interface SignalRule {
  id: string;
  task: TaskId;
  weight: number;
  description: string;
  detect(turns: Turns): string | null;
}

interface Turn {
  /** `role[index in messages]`. */
  where: string;
  text: string;
}

export interface Turns {
  system: Turn[];
  user: Turn[];
  assistant: Turn[];
}

export const HOW_TO = new RegExp(
  [
    String.raw`\b(?:how\s+(?:do|can|could|should|would|shall)\s+(?:i|we|you|one)\b|how\s+to\b|`,
    String.raw`what(?:'s|\s+is)\s+the\s+(?:best|right|easiest|fastest)\s+way\s+to\b|steps\s+to\b|walk\s+me\s+through\b)`,
  ].join(''),
  'i',
);

// "What is the best way to ..." is a how-to, and "what's up" or "what is your name" is small talk.
const NOT_A_DEFINITION = String.raw`(?!\s+the\s+(?:best|right|easiest|fastest)\s+way)(?!\s+(?:you|your|we|i|my|up)\b)`;
export const DEFINITION = new RegExp(
  [
    String.raw`\b(?:what\s+(?:is|are|was|were)\b${NOT_A_DEFINITION}|what's${NOT_A_DEFINITION}|what\s+does\s+.{1,60}?\bmean\b|`,
    String.raw`explain\b|define\b|definition\s+of\b|difference\s+between\b|meaning\s+of\b)`,
  ].join(''),
  'i',
);

const CODE_REQUEST = new RegExp(
  [
    String.raw`\b(?:write|create|implement|generate|code|give\s+me|show\s+me)\b[^.?!\n]{0,60}?`,
    String.raw`\b(?:functions?|class(?:es)?|methods?|scripts?|query|queries|programs?|snippets?|regex(?:es)?|regular\s+expressions?|`,
    String.raw`components?|modules?|algorithms?|endpoints?|unit\s+tests?|code)\b`,
  ].join(''),
  'i',
);

const GREETING = /^\s*(?:hi|hello|hey|hiya|howdy|greetings|good\s+(?:morning|afternoon|evening|day))\b/i;
const THANKS = /\b(?:thanks|thank\s+you|thx|cheers|much\s+appreciated|appreciate\s+(?:it|that|your\s+help))\b/i;
const SMALL_TALK = new RegExp(
  [
    String.raw`\b(?:how\s+are\s+you|how's\s+it\s+going|how\s+is\s+your\s+day|how\s+was\s+your\s+(?:day|weekend)|what's\s+up|`,
    String.raw`fun\s+fact|tell\s+me\s+a\s+joke|your\s+name|who\s+are\s+you|nice\s+to\s+meet\s+you|`,
    String.raw`have\s+a\s+(?:nice|good|great)\s+(?:day|one|weekend)|goodbye|bye|see\s+you)\b`,
  ].join(''),
  'i',
);
/** A social turn longer than this is carrying something else as well. */
const SOCIAL_TURN_MAX_WORDS = 12;
/** Replies under this many characters, plain prose only, are typical of chat. */
const BRIEF_REPLY_CHARS = 200;

// A `Context:` line in a user turn is often just the user describing their situation, so there it
// only counts when numbered sources follow.
const CONTEXT_LINE = /^[ \t]*(?:retrieved\s+)?(?:context|documents|sources|passages)[ \t]*:/im;
const SOURCE_LINE = /^[ \t]*\[\d{1,3}\]/m;
const ATTRIBUTION = new RegExp(
  [
    String.raw`\b(?:according\s+to|based\s+on|as\s+(?:stated|described|documented|mentioned|noted)\s+in|per)\s+`,
    String.raw`(?:the\s+|our\s+|your\s+)?(?:[\w-]+\s+){0,3}?`,
    String.raw`(?:documentation|docs|documents?|guides?|page|policy|faq|manual|article|sources?|context|knowledge\s+base|sheet|agreement|`,
    String.raw`references?|passages?|excerpts?|handbook)\b`,
    '|',
    String.raw`\b(?:the|this)\s+(?:[\w-]+\s+){0,3}?(?:documentation|docs|guide|page|policy|faq|manual|article|source|sheet|agreement)\s+`,
    String.raw`(?:\[\d{1,3}\]\s+)?(?:says|states|explains|lists|notes|mentions|specifies|sets|guarantees)\b`,
  ].join(''),
  'i',
);

const STEP_LINE = /^[ \t]*(?:\d{1,2}[.)]|step\s+\d{1,2}\s*[:.)-])[ \t]+\S/gim;
const countSteps = (text: string) => text.match(STEP_LINE)?.length ?? 0;
const FENCE = /^[ \t]*(```|~~~)[ \t]*([\w+#.-]*)[^\n]*\n[\s\S]*?^[ \t]*\1/gm;
const INLINE_CODE = /`([^`\n]+)`/g;
const SHELL_LANGUAGES = new Set(['bash', 'sh', 'shell', 'zsh', 'console', 'terminal', 'powershell', 'ps1', 'cmd', 'bat']);
const CLI_TOOLS = new Set(
  (
    'npm npx yarn pnpm node nvm deno bun pip pip3 pipx python python3 conda poetry uv git docker docker-compose kubectl helm ' +
    'sudo apt apt-get brew yum dnf snap cd ls mkdir rm cp mv cat chmod chown ln echo grep find tail curl wget ssh scp rsync ' +
    'systemctl service journalctl nginx make cmake cargo rustup go gcc tar unzip export source deactivate crontab pg_dump ' +
    'pg_restore psql mysql mysqldump redis-cli terraform aws gcloud az heroku vercel ps kill'
  ).split(' '),
);
const PROGRAMMING_LANGUAGE =
  /(?<![\w+#])(?:python|javascript|typescript|java|c\+\+|c#|rust|golang|ruby|php|kotlin|swift|sql|scala|haskell|html|css|bash)(?![\w+#])/i;

const ML_TERMS = [
  'machine learning',
  'deep learning',
  'neural networks?',
  'artificial intelligence',
  'ai',
  'ml',
  'llms?',
  'language models?',
  'transformers?',
  'self-attention',
  'attention mechanism',
  'q?lora',
  'low-rank adaptation',
  'fine-tun(?:e|es|ed|ing)',
  'overfitting',
  'underfitting',
  'regularization',
  'gradient descent',
  'gradients?',
  'backpropagation',
  'learning rate',
  'loss function',
  'embeddings?',
  'vector databases?',
  'tokeniz(?:er|ers|ation)',
  'precision',
  'recall',
  'f1 score',
  'classifiers?',
  'classification',
  'regression',
  '(?:un|semi-)?supervised learning',
  'reinforcement learning',
  'training (?:data|set)',
  'held-out data',
  'hyperparameters?',
  'epochs?',
  'batch size',
  'dropout',
  'convolutional',
  'cnns?',
  'rnns?',
  'lstms?',
  'gpt',
  'bert',
  'llama',
  'rag',
  'retrieval-augmented generation',
  'model weights',
  'cross-validation',
  'bias-variance',
  'predictions?',
  'diffusion models?',
  'generative ai',
];
const ML_TERM = new RegExp(String.raw`(?<![\w-])(?:${ML_TERMS.join('|')})(?![\w-])`, 'gi');
/** One ML word in an answer is incidental; two or more make it an explanation of ML. */
const ML_TERMS_IN_ANSWER = 2;

function mlTerms(text: string): string[] {
  return [...new Set([...text.matchAll(ML_TERM)].map((m) => m[0].toLowerCase()))];
}

const quote = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);

function fences(text: string): { fence: string; language: string }[] {
  return [...text.matchAll(FENCE)].map((m) => ({ fence: m[1], language: m[2].toLowerCase() }));
}

function command(text: string): string | null {
  for (const m of text.matchAll(INLINE_CODE)) {
    const words = m[1]
      .trim()
      .replace(/^\$\s*/, '')
      .split(/\s+/);
    const tool = words[0] === 'sudo' && words.length > 1 ? words[1] : words[0];
    if (CLI_TOOLS.has(tool)) return quote(m[0]);
  }
  const prompt = /^[ \t]*\$[ \t]+\S[^\n]*/m.exec(text);
  if (prompt) return quote(prompt[0].trim());
  const shell = fences(text).find((f) => SHELL_LANGUAGES.has(f.language));
  return shell ? shell.fence + shell.language : null;
}

function isSocialOnly(text: string): boolean {
  const social = GREETING.test(text) || THANKS.test(text) || SMALL_TALK.test(text);
  const asksForTask = HOW_TO.test(text) || DEFINITION.test(text) || CODE_REQUEST.test(text) || mlTerms(text).length > 0;
  return social && !asksForTask && text.trim().split(/\s+/).length <= SOCIAL_TURN_MAX_WORDS;
}

function isPlainProse(text: string): boolean {
  return !text.includes('`') && countSteps(text) === 0 && citedSources(text).length === 0;
}

/** The first turn in which the pattern matches, as evidence. */
function firstMatch(turns: Turn[], pattern: RegExp): string | null {
  for (const turn of turns) {
    const m = pattern.exec(turn.text);
    if (m) return `${turn.where}: ${quote(m[0].trim())}`;
  }
  return null;
}

function firstWith(turns: Turn[], find: (text: string) => string | null): string | null {
  for (const turn of turns) {
    const found = find(turn.text);
    if (found !== null) return `${turn.where}: ${found}`;
  }
  return null;
}

export const SIGNALS: readonly SignalRule[] = [
  {
    id: 'rag.context_block',
    task: 'rag_enhanced',
    weight: 0.6,
    description: 'a system message with a `Context:` block (or a user turn with one followed by numbered sources)',
    detect: ({ system, user }) =>
      firstMatch(system, CONTEXT_LINE) ??
      firstWith(user, (text) => {
        const m = CONTEXT_LINE.exec(text);
        return m && SOURCE_LINE.test(text.slice(m.index)) ? quote(m[0].trim()) : null;
      }),
  },
  {
    id: 'rag.citation',
    task: 'rag_enhanced',
    weight: 0.3,
    description: 'the response cites a numbered source such as `[1]` (outside code)',
    detect: ({ assistant }) =>
      firstWith(assistant, (text) => {
        const cited = citedSources(text);
        return cited.length > 0 ? cited.map((n) => `[${n}]`).join(' ') : null;
      }),
  },
  {
    id: 'rag.attribution_phrase',
    task: 'rag_enhanced',
    weight: 0.2,
    description: 'the response attributes its answer to a document ("according to the documentation", "the pricing sheet says")',
    detect: ({ assistant }) => firstMatch(assistant, ATTRIBUTION),
  },
  {
    id: 'tech.how_to_question',
    task: 'technical_implementation',
    weight: 0.5,
    description: 'the user asks how to do something ("How do I", "how to", "steps to", "what is the best way to")',
    detect: ({ user }) => firstMatch(user, HOW_TO),
  },
  {
    id: 'tech.numbered_steps',
    task: 'technical_implementation',
    weight: 0.3,
    description: 'the response has at least two numbered steps ("1.", "2)", "Step 3:") at line starts',
    detect: ({ assistant }) =>
      firstWith(assistant, (text) => {
        const steps = countSteps(text);
        return steps >= 2 ? `${steps} numbered steps` : null;
      }),
  },
  {
    id: 'tech.commands',
    task: 'technical_implementation',
    weight: 0.2,
    description: 'the response gives a command: inline code starting with a known CLI tool, a `$ ` prompt line, or a shell code block',
    detect: ({ assistant }) => firstWith(assistant, command),
  },
  {
    id: 'edu.definition_question',
    task: 'ai_ml_education',
    weight: 0.3,
    description: 'the user asks for a definition or concept ("What is", "What does X mean", "explain", "difference between")',
    detect: ({ user }) => firstMatch(user, DEFINITION),
  },
  {
    id: 'edu.ml_topic',
    task: 'ai_ml_education',
    weight: 0.5,
    description: 'the user mentions an AI/ML term (machine learning, overfitting, transformer, LoRA, embeddings, ...)',
    detect: ({ user }) =>
      firstWith(user, (text) => {
        const terms = mlTerms(text);
        return terms.length > 0 ? quote(terms.join(', ')) : null;
      }),
  },
  {
    id: 'edu.ml_explanation',
    task: 'ai_ml_education',
    weight: 0.2,
    description: `the response uses at least ${ML_TERMS_IN_ANSWER} distinct AI/ML terms`,
    detect: ({ assistant }) =>
      firstWith(assistant, (text) => {
        const terms = mlTerms(text);
        return terms.length >= ML_TERMS_IN_ANSWER ? quote(terms.join(', ')) : null;
      }),
  },
  {
    id: 'chat.greeting',
    task: 'conversational_chat',
    weight: 0.4,
    description: 'a user turn opens with a greeting ("Hi", "Hello", "Good morning")',
    detect: ({ user }) => firstMatch(user, GREETING),
  },
  {
    id: 'chat.thanks',
    task: 'conversational_chat',
    weight: 0.4,
    description: 'the user says thanks',
    detect: ({ user }) => firstMatch(user, THANKS),
  },
  {
    id: 'chat.small_talk',
    task: 'conversational_chat',
    weight: 0.4,
    description: 'small talk ("how are you", "fun fact", "tell me a joke", "bye")',
    detect: ({ user }) => firstMatch(user, SMALL_TALK),
  },
  {
    id: 'chat.social_only_turn',
    task: 'conversational_chat',
    weight: 0.3,
    description: [
      `a user turn of at most ${SOCIAL_TURN_MAX_WORDS} words that is only social:`,
      'greeting, thanks or small talk, no task request',
    ].join(' '),
    detect: ({ user }) => firstWith(user, (text) => (isSocialOnly(text) ? quote(text.trim()) : null)),
  },
  {
    id: 'chat.brief_reply',
    task: 'conversational_chat',
    weight: 0.2,
    description: `every response is plain prose under ${BRIEF_REPLY_CHARS} characters: no code, numbered steps or citations`,
    detect: ({ assistant }) =>
      assistant.length > 0 && assistant.every((t) => t.text.length < BRIEF_REPLY_CHARS && isPlainProse(t.text))
        ? `${assistant.length} brief replies`
        : null,
  },
  {
    id: 'chat.multi_turn',
    task: 'conversational_chat',
    weight: 0.2,
    description: 'a back-and-forth: at least two user turns and two responses',
    detect: ({ user, assistant }) => (user.length >= 2 && assistant.length >= 2 ? `${user.length} user turns` : null),
  },
  {
    id: 'code.request',
    task: 'code_generation',
    weight: 0.5,
    description: 'the user asks for code ("Write a ... function", "create a class", "give me a query")',
    detect: ({ user }) => firstMatch(user, CODE_REQUEST),
  },
  {
    id: 'code.code_block',
    task: 'code_generation',
    weight: 0.4,
    description: 'the response has a fenced code block that is not a shell session (those count as commands)',
    detect: ({ assistant }) =>
      firstWith(assistant, (text) => {
        const block = fences(text).find((f) => !SHELL_LANGUAGES.has(f.language));
        return block ? block.fence + block.language : null;
      }),
  },
  {
    id: 'code.language_named',
    task: 'code_generation',
    weight: 0.1,
    description: 'the user names a programming language (Python, JavaScript, SQL, ...)',
    detect: ({ user }) => firstMatch(user, PROGRAMMING_LANGUAGE),
  },
];

/** Curly apostrophes become straight ones, so "what’s" matches like "what's". */
export function straightQuotes(text: string): string {
  return text.replace(/[\u2018\u2019]/g, "'");
}

function splitTurns(messages: Message[]): Turns {
  const turns: Turns = { system: [], user: [], assistant: [] };
  for (const [i, m] of messages.entries()) turns[m.role].push({ where: `${m.role}[${i}]`, text: straightQuotes(m.content) });
  return turns;
}

export function detectSignals(messages: Message[]): FiredSignal[] {
  const turns = splitTurns(messages);
  const fired: FiredSignal[] = [];
  for (const rule of SIGNALS) {
    const evidence = rule.detect(turns);
    if (evidence !== null) fired.push({ id: rule.id, task: rule.task, weight: rule.weight, evidence });
  }
  return fired;
}
