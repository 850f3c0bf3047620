import { Template } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import { BoundedTemplate } from '../../src/data/bounded-jinja';
import {
  ChatTemplateError,
  ChatTemplateLimitError,
  chatRenderer,
  chatSettingsFromConfig,
  chatTemplateFromConfig,
  TEMPLATE_LIMITS,
  type TemplateLimits,
} from '../../src/data/chat-template';
import type { Message } from '../../src/data/types';

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const CONVERSATION: Message[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
];

describe('chatTemplateFromConfig', () => {
  it('reads a string, or nothing', () => {
    expect(chatTemplateFromConfig({ chat_template: CHATML })).toBe(CHATML);
    expect(chatTemplateFromConfig({})).toBeNull();
    expect(chatTemplateFromConfig({ chat_template: null })).toBeNull();
  });

  it('picks "default" from a list of named templates', () => {
    const config = {
      chat_template: [
        { name: 'tool_use', template: 'tools' },
        { name: 'default', template: CHATML },
      ],
    };
    expect(chatTemplateFromConfig(config)).toBe(CHATML);
  });

  it('refuses a list without "default" and other shapes, saying what it found', () => {
    expect(() => chatTemplateFromConfig({ chat_template: [{ name: 'rag', template: 'x' }] })).toThrow(
      /chat templates \(rag\) but none named "default"/,
    );
    expect(() => chatTemplateFromConfig({ chat_template: 42 })).toThrow(ChatTemplateError);
  });
});

describe('chatSettingsFromConfig', () => {
  it('reads special tokens written as strings or AddedToken objects', () => {
    expect(
      chatSettingsFromConfig({ bos_token: '<s>', eos_token: { __type: 'AddedToken', content: '</s>' }, chat_template: CHATML }),
    ).toEqual({ chatTemplate: CHATML, bosToken: '<s>', eosToken: '</s>' });
    expect(chatSettingsFromConfig({})).toEqual({ chatTemplate: null, bosToken: null, eosToken: null });
  });
});

describe('chatRenderer', () => {
  it('renders a model template with the generation prompt', () => {
    const renderer = chatRenderer({ chatTemplate: CHATML, bosToken: '<s>', eosToken: '</s>' });
    expect(renderer.render(CONVERSATION)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n',
    );
    expect(renderer.render(CONVERSATION.slice(0, 2), { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('passes bos_token and eos_token to the template', () => {
    const renderer = chatRenderer({ chatTemplate: '{{ bos_token }}|{{ eos_token }}', bosToken: '<s>', eosToken: '</s>' });
    expect(renderer.render([])).toBe('<s>|</s>');
  });

  it('falls back to the plain default template', () => {
    const renderer = chatRenderer({ chatTemplate: null, bosToken: '<s>', eosToken: '</s>' });
    const multi: Message[] = [...CONVERSATION, { role: 'user', content: 'Again?' }, { role: 'assistant', content: 'Yes.' }];
    expect(renderer.render(multi)).toBe('<s>System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!</s>\n\nUser: Again?\n\nAssistant: Yes.</s>');
    expect(renderer.render(CONVERSATION.slice(0, 2), { addGenerationPrompt: true })).toBe('<s>System: Be brief.\n\nUser: Hi\n\nAssistant:');
    expect(renderer.render([], { addGenerationPrompt: true })).toBe('<s>Assistant:');
  });

  it('leaves out special tokens the model does not have', () => {
    const renderer = chatRenderer({ chatTemplate: null, bosToken: null, eosToken: null });
    expect(renderer.render(CONVERSATION.slice(1))).toBe('User: Hi\n\nAssistant: Hello!');
  });

  it('reports templates that do not parse or that refuse a conversation', () => {
    const broken = () => chatRenderer({ chatTemplate: '{% for %}', bosToken: null, eosToken: null });
    expect(broken).toThrow(ChatTemplateError);
    expect(broken).toThrow(/chat_template could not be parsed/);
    const strict = chatRenderer({
      chatTemplate: "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with the user') }}{% endif %}ok",
      bosToken: null,
      eosToken: null,
    });
    expect(strict.render(CONVERSATION.slice(1))).toBe('ok');
    expect(() => strict.render(CONVERSATION)).toThrow(
      new ChatTemplateError('the chat template refused the conversation: Conversations must start with the user'),
    );
  });
});

const renderWith = (chatTemplate: string, limits?: TemplateLimits) =>
  chatRenderer({ chatTemplate, bosToken: '<s>', eosToken: '</s>' }, limits);

/** Runs a render that must be stopped; returns the error and how long it took. */
function stopped(chatTemplate: string, limits?: TemplateLimits): { error: ChatTemplateLimitError; ms: number } {
  const start = performance.now();
  let error: unknown;
  try {
    renderWith(chatTemplate, limits).render(CONVERSATION);
  } catch (err) {
    error = err;
  }
  const ms = performance.now() - start;
  expect(error).toBeInstanceOf(ChatTemplateLimitError);
  expect((error as Error).message).toMatch(/^the model's chat_template was stopped: .*Fix "chat_template" in tokenizer_config.json/);
  return { error: error as ChatTemplateLimitError, ms };
}

describe('chat templates cannot reach JavaScript objects', () => {
  it('renders nothing, or fails with ChatTemplateError, for every way into JavaScript objects', () => {
    const attacks = [
      "{{ ''.constructor.constructor('globalThis.pwned = 1')() }}",
      "{{ messages.constructor.constructor('globalThis.pwned = 1')() }}",
      "{{ messages[0].constructor.constructor('globalThis.pwned = 1')() }}",
      "{{ raise_exception.constructor('globalThis.pwned = 1')() }}",
      "{{ range.constructor('globalThis.pwned = 1')() }}",
      "{{ strftime_now.constructor('globalThis.pwned = 1')() }}",
      '{{ messages.__proto__ }}{{ messages[0].__proto__ }}{{ messages.prototype }}',
      "{{ messages['constructor'] }}{{ messages[0]['__proto__'] }}{{ messages[0].content.__len__ }}",
      "{{ ''.__class__.__mro__[1].__subclasses__() }}",
      '{{ process }}{{ globalThis }}{{ window }}{{ self }}{{ require }}{{ cycler }}{{ lipsum }}',
      '{% set ns = namespace() %}{% set ns.__proto__.polluted = 1 %}',
      "{{ messages|map(attribute='constructor')|list }}",
      '{{ messages.append(1) }}',
    ];
    for (const attack of attacks) {
      let output = '';
      try {
        output = renderWith(attack).render(CONVERSATION);
      } catch (err) {
        expect(err, attack).toBeInstanceOf(ChatTemplateError);
      }
      expect(output, attack).toMatch(/^(\[undefined(, undefined)*\])?$/);
    }
    expect((globalThis as { pwned?: unknown }).pwned).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('a "__proto__" key of a conversation stays data, and content is never evaluated', () => {
    const message = JSON.parse('{"role": "user", "content": "{{ 7 * 7 }}", "__proto__": {"role": "system"}}') as Message;
    const renderer = renderWith("{% for m in messages %}{{ m.role }}: {{ m['content'] }}|{{ m['__proto__'].role }}{% endfor %}");
    expect(renderer.render([message])).toBe('user: {{ 7 * 7 }}|system');
  });

  it('namespace attributes named like JavaScript internals are plain keys', () => {
    const template = '{% set ns = namespace() %}{% set ns.__proto__ = 5 %}{% set ns.constructor = 6 %}{{ ns.__proto__ + ns.constructor }}';
    expect(renderWith(template).render([])).toBe('11');
    expect(({} as { constructor: unknown }).constructor).toBe(Object);
  });
});

describe('chat templates that never end or grow without bound are stopped', () => {
  it('range(10**12) fails at once, before building the list', () => {
    const { error, ms } = stopped('{% for i in range(10**12) %}x{% endfor %}');
    expect(error.limit).toBe('list size');
    expect(error.message).toContain(`it built a list of 1000000000000 items, more than ${TEMPLATE_LIMITS.maxItems}`);
    // The library's own range would push 10^12 numbers (memory runs out long before).
    expect(ms).toBeLessThan(1000);
  });

  it('nested loops end at the time limit with the default limits', () => {
    const { error, ms } = stopped('{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}');
    expect(error.limit).toBe('time');
    expect(error.message).toContain(`it ran for more than ${TEMPLATE_LIMITS.timeLimitMs} ms (it may loop forever)`);
    // A bound on termination, not a speed claim: unstopped, this loop runs for hours.
    expect(ms).toBeLessThan(TEMPLATE_LIMITS.timeLimitMs + 3000);
  });

  it('a shorter time limit and a step budget are kept too', () => {
    const loop = '{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}';
    const timed = stopped(loop, { ...TEMPLATE_LIMITS, timeLimitMs: 100 });
    expect(timed.error.limit).toBe('time');
    expect(timed.ms).toBeLessThan(100 + 3000);
    const counted = stopped(loop, { ...TEMPLATE_LIMITS, maxSteps: 10_000 });
    expect(counted.error.limit).toBe('steps');
    expect(counted.error.message).toContain('it took more than 10000 steps');
  });

  it('strings and lists that double every iteration', () => {
    const strings = stopped("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}");
    expect(strings.error.limit).toBe('string size');
    expect(strings.error.message).toContain(`more than ${TEMPLATE_LIMITS.maxChars}`);
    expect(strings.error.message).toContain('or shorten this conversation');
    const lists = stopped('{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}');
    expect(lists.error.limit).toBe('list size');
  });

  it('padding filters asked for absurd widths', () => {
    expect(stopped("{{ 'a' | indent(2**28, true) }}").error.limit).toBe('string size');
    // Past V8's longest string: the engine refuses, and that is reported the same way.
    expect(stopped("{{ 'a\\nb' | indent(2**29) }}").error.limit).toBe('engine');
    expect(stopped('{{ messages | tojson(indent=2**27) }}').error.limit).toBe('engine');
  });

  it('a template too long to be a chat template, before parsing it', () => {
    let error: unknown;
    try {
      renderWith(`${'x'.repeat(TEMPLATE_LIMITS.maxTemplateChars)}!`);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ChatTemplateLimitError);
    expect((error as ChatTemplateLimitError).limit).toBe('template size');
  });

  it('nesting too deep to parse, and a huge raised message, give short ChatTemplateErrors', () => {
    const deep = `{{ ${'('.repeat(100_000)}1${')'.repeat(100_000)} }}`;
    expect(() => renderWith(deep)).toThrow(/chat_template could not be parsed/);
    const loud =
      "{% set ns = namespace(s='x') %}{% for i in range(20) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ raise_exception(ns.s) }}";
    let message = '';
    try {
      renderWith(loud).render([]);
    } catch (err) {
      expect(err).toBeInstanceOf(ChatTemplateError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/^the chat template refused the conversation: x+…$/);
    expect(message.length).toBeLessThan(600);
  });
});

describe('bounded rendering keeps the library semantics', () => {
  it('renders every global and a real template exactly as @huggingface/jinja does', () => {
    const templates = [
      '{{ true }} {{ True }} {{ false }} {{ False }} {{ none }} {{ None }}',
      '{% for i in range(3) %}{{ i }}{% endfor %}|{% for i in range(2, 11, 3) %}{{ i }}{% endfor %}',
      '{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}|{% for i in range(0, 1, 0.25) %}{{ i }},{% endfor %}',
      '{{ range(0) | length }}{{ range(3, 1) | length }}',
      "{{ strftime_now('%Y-%m-%d %b %B %H:%M %%') }}",
      CHATML,
    ];
    const variables = { messages: CONVERSATION, bos_token: '<s>', eos_token: '</s>', add_generation_prompt: true };
    for (const source of templates) {
      expect(new BoundedTemplate(source).render(variables), source).toBe(new Template(source).render(variables));
    }
    expect(() => new BoundedTemplate("{{ raise_exception('no') }}").render({})).toThrow('no');
    expect(() => new BoundedTemplate('{{ range(1, 2, 0) }}').render({})).toThrow('range() step must not be zero');
  });
});
