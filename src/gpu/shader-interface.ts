import { ShaderInterfaceError } from './errors';

/** Scalar types a `struct Params` field may have: every field is 4 bytes, so field i sits at byte 4 i. */
export type ParamType = 'u32' | 'i32' | 'f32';

export interface ParamField {
  name: string;
  type: ParamType;
  /** Index in `struct Params`: the field's byte offset is 4 * index. */
  index: number;
}

/** A pipeline-overridable constant (`override NAME: u32 = 64;`), set per pipeline with `Gpu.kernel(source, entry, constants)`. */
export interface OverrideField {
  name: string;
  type: ParamType;
  /** Declared without an initializer: every pipeline of an entry point that uses it must set it. */
  required: boolean;
}

/**
 * What one entry point reads: the `struct Params` fields, storage buffers and override constants it
 * uses, directly or through the functions and module-scope declarations it names.
 */
export interface EntryInterface {
  params: ReadonlyMap<string, ParamField>;
  /** Binding index by variable name, in binding order. */
  storage: ReadonlyMap<string, number>;
  overrides: ReadonlyMap<string, OverrideField>;
}

/** What a WGSL source declares for its kernels: every field of `struct Params`, and what each entry point uses. */
export interface ShaderInterface {
  fields: readonly ParamField[];
  /** Every storage buffer the source declares. */
  storage: ReadonlyMap<string, number>;
  entries: ReadonlyMap<string, EntryInterface>;
  overrides: ReadonlyMap<string, OverrideField>;
}

const BINDING = /@group\(\s*(\d+)\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s*(?:<\s*(\w+)[^>]*>)?\s*(\w+)\s*:\s*([^;]+);/g;
const FUNCTION = /\bfn\s+(\w+)\s*\(/g;
/** The attributes of a compute entry point (its @workgroup_size may name override constants) and its name. */
const ENTRY = /@compute\b([^;{}]*?)\bfn\s+(\w+)/g;
const OVERRIDE = /\boverride\s+(\w+)\s*(?::\s*(\w+))?\s*(=[^;]*)?;/g;
/** A module-scope `const`, `override` or `var` declaration (workgroup arrays may be sized by overrides). */
const MODULE_DECLARATION = /\b(?:const|override|var(?:\s*<[^>]*>)?)\s+(\w+)[^;]*;/g;
/** An identifier that is not a member access (`.x`). */
const IDENTIFIER = /(?<![\w.])[A-Za-z_]\w*/g;
const FIELD_USE = /(?<![\w.])p\s*\.\s*(\w+)/g;
const BARE_P = /(?<![\w.])p\b(?!\s*\.\s*\w)/;
const LOCAL = /\b(?:let|var|const)\s*(?:<[^>]*>)?\s*(\w+)|(\w+)\s*:(?!:)/g;
const SCALARS = new Set<string>(['u32', 'i32', 'f32']);
/** What wgsl-preprocessor resolves (src/gpu/preprocess.ts): left in, the scanner would count both branches. */
const PREPROCESSOR = /^[ \t]*#(?:if|elif|else|endif)\b|\$\{/m;

const parsed = new Map<string, ShaderInterface>();

/**
 * Reads the interface every shader of this engine follows (docs/CONVENTIONS.md): `struct Params` of
 * 4-byte scalars at `@group(0) @binding(0) var<uniform> p: Params`, storage buffers at bindings 1..n,
 * and for each entry point the fields (`p.name`) and buffers its body and the functions it calls
 * name, which is what WebGPU's layout `auto` counts as used, and the `override` constants they or
 * the module-scope declarations they name (a workgroup array's size) need. A scanner for these
 * declarations, not a WGSL parser: a local that shadows a binding, an override or `p`, or a use of
 * `p` other than `p.<field>`, is refused, so that what it finds is what the shader reads. It reads a
 * preprocessed source (one weight-format variant, src/kernels/weight-shader.ts) and refuses one
 * with directives left in.
 */
export function entryInterface(source: string, entry: string): { shader: ShaderInterface; entry: EntryInterface } {
  const fail = (problem: string) => new ShaderInterfaceError(entry, problem);
  let shader = parsed.get(source);
  if (!shader) {
    shader = parse(source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, ''), fail);
    parsed.set(source, shader);
  }
  const found = shader.entries.get(entry);
  if (!found) throw fail(`the shader has no @compute entry point of that name (it has ${[...shader.entries.keys()].join(', ')})`);
  return { shader, entry: found };
}

function parse(code: string, fail: (problem: string) => ShaderInterfaceError): ShaderInterface {
  if (PREPROCESSOR.test(code)) {
    throw fail('it still holds #if/#elif/#else/#endif or template placeholders: pass it through preprocessShader (src/gpu/preprocess.ts)');
  }
  const fields = paramFields(code, fail);
  const storage = storageBindings(code, fail);
  const functions = functionBodies(code);
  const overrides = overrideConstants(code, fail);
  const declarations = moduleDeclarations(code, functions);
  const moduleVars = new Set(['p', ...storage.keys(), ...overrides.keys()]);
  for (const [name, body] of functions) {
    for (const [, local, argument] of body.matchAll(LOCAL)) {
      const declared = local ?? argument;
      if (moduleVars.has(declared)) throw fail(`fn ${name} declares "${declared}", which shadows the module-scope variable of that name`);
    }
    // Only fields read as p.<field> are packed, so p may not be read any other way (copied, passed on).
    if (BARE_P.test(body)) throw fail(`fn ${name} uses p other than as p.<field>`);
  }
  const entries = new Map<string, EntryInterface>();
  for (const [, attributes, entry] of code.matchAll(ENTRY)) {
    const reached = new Set<string>();
    const visitText = (text: string) => {
      for (const [identifier] of text.matchAll(IDENTIFIER)) visit(identifier);
    };
    const visit = (name: string) => {
      if (reached.has(name)) return;
      const text = functions.get(name) ?? declarations.get(name);
      if (text === undefined) return;
      reached.add(name);
      visitText(text);
    };
    visit(entry);
    visitText(attributes);
    const params = new Map<string, ParamField>();
    const used = new Set<string>();
    for (const name of reached) {
      if (!functions.has(name)) continue;
      const body = functions.get(name)!;
      for (const [, field] of body.matchAll(FIELD_USE)) {
        const declared = fields.find((f) => f.name === field);
        if (!declared) throw fail(`fn ${name} reads p.${field}, which struct Params does not declare`);
        params.set(field, declared);
      }
      for (const [identifier] of body.matchAll(IDENTIFIER)) if (storage.has(identifier)) used.add(identifier);
    }
    entries.set(entry, {
      params: new Map([...params].sort((a, b) => a[1].index - b[1].index)),
      storage: new Map([...storage].filter(([name]) => used.has(name))),
      overrides: new Map([...overrides].filter(([name]) => reached.has(name))),
    });
  }
  return { fields, storage, entries, overrides };
}

/** `override NAME: type [= default];` declarations; the type must be written out, so a constant's value can be checked. */
function overrideConstants(code: string, fail: (problem: string) => ShaderInterfaceError): Map<string, OverrideField> {
  const overrides = new Map<string, OverrideField>();
  for (const [declaration, name, type, initializer] of code.matchAll(OVERRIDE)) {
    if (!type || !SCALARS.has(type)) throw fail(`"${declaration}" must declare its type as u32, i32 or f32`);
    overrides.set(name, { name, type: type as ParamType, required: initializer === undefined });
  }
  return overrides;
}

/** The text of every module-scope const, override and var declaration, by name (function bodies left out). */
function moduleDeclarations(code: string, functions: Map<string, string>): Map<string, string> {
  let outside = code;
  for (const body of functions.values()) outside = outside.replace(body, ';');
  return new Map([...outside.matchAll(MODULE_DECLARATION)].map(([text, name]) => [name, text]));
}

function paramFields(code: string, fail: (problem: string) => ShaderInterfaceError): ParamField[] {
  const struct = /\bstruct\s+Params\s*\{([^}]*)\}/.exec(code);
  if (!struct) throw fail('the shader declares no struct Params');
  const fields = struct[1]
    .split(',')
    .map((field) => field.trim())
    .filter((field) => field.length > 0)
    .map((field, index): ParamField => {
      const match = /^(\w+)\s*:\s*(\w+)$/.exec(field);
      if (!match || !SCALARS.has(match[2])) throw fail(`struct Params field "${field}" is not "name: u32", "name: i32" or "name: f32"`);
      return { name: match[1], type: match[2] as ParamType, index };
    });
  const names = new Set(fields.map((f) => f.name));
  if (names.size !== fields.length) throw fail('struct Params declares a field twice');
  return fields;
}

/** Storage buffers by name, in binding order, after checking that binding 0 is `var<uniform> p: Params`. */
function storageBindings(code: string, fail: (problem: string) => ShaderInterfaceError): Map<string, number> {
  let uniform = false;
  const storage = new Map<string, number>();
  for (const [, group, binding, space, name, type] of code.matchAll(BINDING)) {
    const index = Number(binding);
    if (group !== '0') throw fail(`${name} is in group ${group}; every binding is in group 0`);
    if (space === 'uniform') {
      if (index !== 0 || name !== 'p' || type.trim() !== 'Params') {
        throw fail(`the uniform must be "@binding(0) var<uniform> p: Params", not ${name}`);
      }
      uniform = true;
    } else if (space === 'storage') {
      if (index === 0) throw fail(`storage buffer ${name} is at binding 0, which belongs to the Params uniform`);
      if ([...storage.values()].includes(index)) throw fail(`binding ${index} is declared twice`);
      storage.set(name, index);
    } else {
      throw fail(`binding ${name} is neither var<uniform> nor var<storage>`);
    }
  }
  if (!uniform) throw fail('the shader has no "@group(0) @binding(0) var<uniform> p: Params"');
  return new Map([...storage].sort((a, b) => a[1] - b[1]));
}

/** Each module-scope function's text from its parameter list to its closing brace. */
function functionBodies(code: string): Map<string, string> {
  const bodies = new Map<string, string>();
  for (const match of code.matchAll(FUNCTION)) {
    const start = match.index + match[0].length;
    let depth = 0;
    let end = code.indexOf('{', start);
    for (; end < code.length; end++) {
      if (code[end] === '{') depth++;
      else if (code[end] === '}' && --depth === 0) break;
    }
    bodies.set(match[1], code.slice(start, end + 1));
  }
  return bodies;
}
