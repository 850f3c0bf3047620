import { describe, expect, it } from 'vitest';
import {
  ChatTemplateError,
  chatRenderer,
  chatSettingsFromConfig,
  chatTemplateFromConfig,
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
    expect(renderer.render(multi)).toBe(
      '<s>System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!</s>\n\nUser: Again?\n\nAssistant: Yes.</s>',
    );
    expect(renderer.render(CONVERSATION.slice(0, 2), { addGenerationPrompt: true })).toBe(
      '<s>System: Be brief.\n\nUser: Hi\n\nAssistant:',
    );
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
