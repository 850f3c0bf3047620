/**
 * Rendering a model's chat template, which comes from someone else's tokenizer_config.json, with
 * limits that make a hostile or broken template fail quickly instead of hanging the page or the
 * CLI. @huggingface/jinja interprets templates synchronously, so the limits are enforced from
 * inside its interpreter: every AST node it evaluates is a step, and each step checks the step
 * budget, the clock and the size of the value it produced. The library's globals are replaced by
 * the same set with a `range` that refuses lists past the size limit before building them (the
 * library's own would fill memory on `range(10**12)` before any step ends).
 *
 * The template cannot reach JavaScript objects in the first place: the interpreter looks names,
 * attributes and items up in Maps of its own values, never on JavaScript objects, so
 * `''.constructor`, `messages.__proto__` and the like are undefined. Tests prove both.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';

export interface TemplateLimits {
  /** Longest template text accepted. */
  maxTemplateChars: number;
  /** Interpreter steps (AST nodes evaluated) per render. */
  maxSteps: number;
  /** Wall-clock time per render, checked at every step. */
  timeLimitMs: number;
  /** Longest string any expression may produce, the rendered text included. */
  maxChars: number;
  /** Most items in any list or mapping an expression produces, `range()` included. */
  maxItems: number;
}

/**
 * Real chat templates are under 20 KB; a 100-turn conversation through Qwen2.5's template takes
 * about 2,700 steps and 2 ms, so the step budget is hundreds of times what a real conversation
 * needs. One step can cost a pass over `maxItems` items (a loop with an empty body is one step),
 * a few tens of milliseconds on a slow CPU, so a render ends within `timeLimitMs` plus that.
 * 10,000 items is more turns than any conversation that fits a training row.
 */
export const TEMPLATE_LIMITS: Readonly<TemplateLimits> = {
  maxTemplateChars: 1_000_000,
  maxSteps: 1_000_000,
  timeLimitMs: 2_000,
  maxChars: 16 * 2 ** 20,
  maxItems: 10_000,
};

export type TemplateLimit = 'template size' | 'steps' | 'time' | 'string size' | 'list size' | 'engine';

/** A template that passed a limit; `limit` says which. */
export class TemplateLimitError extends Error {
  override name = 'TemplateLimitError';
  constructor(
    readonly limit: TemplateLimit,
    message: string,
  ) {
    super(message);
  }
}

type Statement = Parameters<Interpreter['evaluate']>[0];
type RuntimeValue = ReturnType<Interpreter['evaluate']>;

class BoundedInterpreter extends Interpreter {
  private steps = 0;
  private readonly deadline: number;

  constructor(
    env: Environment,
    private readonly limits: TemplateLimits,
  ) {
    super(env);
    this.deadline = performance.now() + limits.timeLimitMs;
  }

  override evaluate(statement: Statement, environment: Environment): RuntimeValue {
    const { limits } = this;
    if (++this.steps > limits.maxSteps) {
      throw new TemplateLimitError('steps', `it took more than ${limits.maxSteps} steps (it may loop forever)`);
    }
    if (performance.now() > this.deadline) {
      throw new TemplateLimitError('time', `it ran for more than ${limits.timeLimitMs} ms (it may loop forever)`);
    }
    const result = super.evaluate(statement, environment);
    const value: unknown = result.value;
    if (typeof value === 'string' && value.length > limits.maxChars) {
      throw new TemplateLimitError('string size', `it built a string of ${value.length} characters, more than ${limits.maxChars}`);
    }
    const items = Array.isArray(value) ? value.length : value instanceof Map ? value.size : 0;
    if (items > limits.maxItems) throw tooManyItems(items, limits);
    return result;
  }
}

const tooManyItems = (items: number, limits: TemplateLimits) =>
  new TemplateLimitError('list size', `it built a list of ${items} items, more than ${limits.maxItems}`);

/** Python's range, refusing before it builds a list longer than `maxItems`. */
function boundedRange(limits: TemplateLimits) {
  return (start: number, stop?: number, step = 1): number[] => {
    if (stop === undefined) [start, stop] = [0, start];
    if (step === 0) throw new Error('range() step must not be zero');
    const count = Math.max(0, Math.ceil((stop - start) / step));
    if (!(count <= limits.maxItems)) throw tooManyItems(count, limits);
    return Array.from({ length: count }, (_, i) => start + i * step);
  };
}

/** `strftime_now` as @huggingface/jinja defines it: the directives %Y %m %d %b %B %H %M %%. */
function strftimeNow(format: string): string {
  const date = new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  const month = (style: 'long' | 'short') => new Intl.DateTimeFormat(undefined, { month: style }).format(date);
  return String(format).replace(/%[YmdbBHM%]/g, (directive) => {
    switch (directive) {
      case '%Y':
        return String(date.getFullYear());
      case '%m':
        return pad(date.getMonth() + 1);
      case '%d':
        return pad(date.getDate());
      case '%b':
        return month('short');
      case '%B':
        return month('long');
      case '%H':
        return pad(date.getHours());
      case '%M':
        return pad(date.getMinutes());
      default:
        return '%';
    }
  });
}

/** A parsed template whose renders are bounded by `limits`. */
export class BoundedTemplate {
  private readonly template: Template;

  /** Throws TemplateLimitError for a template over maxTemplateChars, or the parser's error. */
  constructor(
    source: string,
    private readonly limits: TemplateLimits = TEMPLATE_LIMITS,
  ) {
    if (source.length > limits.maxTemplateChars) {
      throw new TemplateLimitError('template size', `it is ${source.length} characters long, more than ${limits.maxTemplateChars}`);
    }
    this.template = new Template(source);
  }

  /** Throws TemplateLimitError when a limit is passed, or the error the template raised. */
  render(variables: Record<string, unknown>): string {
    const env = new Environment();
    const globals: Record<string, unknown> = {
      false: false,
      true: true,
      none: null,
      False: false,
      True: true,
      None: null,
      raise_exception: (message: unknown) => {
        throw new Error(String(message));
      },
      range: boundedRange(this.limits),
      strftime_now: strftimeNow,
    };
    for (const [name, value] of Object.entries({ ...globals, ...variables })) env.set(name, value);
    try {
      return new BoundedInterpreter(env, this.limits).run(this.template.parsed).value as string;
    } catch (err) {
      // Deep recursion (a macro calling itself) or a string or list past what the engine allows.
      if (err instanceof RangeError) throw new TemplateLimitError('engine', `it ran out of stack or memory (${err.message})`);
      throw err;
    }
  }
}
