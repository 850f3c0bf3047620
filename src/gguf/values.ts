/**
 * GGUF metadata values: the 13 value types of the format and how webtune holds them. Numeric
 * arrays (token scores and types, per-layer sizes) are typed arrays, so a 150k-entry vocabulary
 * costs one allocation; 64-bit integers are bigint so nothing is rounded silently.
 */

export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

type T = typeof GgufValueType;
export type GgufNumberType = T['UINT8' | 'INT8' | 'UINT16' | 'INT16' | 'UINT32' | 'INT32' | 'FLOAT32' | 'FLOAT64'];
export type GgufBigIntType = T['UINT64' | 'INT64'];

export type GgufArray =
  | { itemType: T['UINT8']; items: Uint8Array }
  | { itemType: T['INT8']; items: Int8Array }
  | { itemType: T['UINT16']; items: Uint16Array }
  | { itemType: T['INT16']; items: Int16Array }
  | { itemType: T['UINT32']; items: Uint32Array }
  | { itemType: T['INT32']; items: Int32Array }
  | { itemType: T['FLOAT32']; items: Float32Array }
  | { itemType: T['FLOAT64']; items: Float64Array }
  | { itemType: T['UINT64']; items: BigUint64Array }
  | { itemType: T['INT64']; items: BigInt64Array }
  | { itemType: T['BOOL']; items: boolean[] }
  | { itemType: T['STRING']; items: string[] };

export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: T['BOOL']; value: boolean }
  | { type: T['STRING']; value: string }
  | { type: T['ARRAY']; value: GgufArray };

/** Key/value pairs in file order. */
export type GgufMetadata = Map<string, GgufValue>;

const NAMES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64'];

export function valueTypeName(type: number): string {
  return NAMES[type] ?? `unknown type ${type}`;
}

/** Bytes of one fixed-size scalar, or null for strings and arrays. */
export function scalarBytes(type: number): number | null {
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL:
      return 1;
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
      return 2;
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
    case GgufValueType.FLOAT32:
      return 4;
    case GgufValueType.UINT64:
    case GgufValueType.INT64:
    case GgufValueType.FLOAT64:
      return 8;
    default:
      return null;
  }
}

/** A short text for error messages: the type and, for scalars, the value. */
export function describeValue(v: GgufValue): string {
  if (v.type === GgufValueType.ARRAY) return `an array of ${v.value.items.length} ${valueTypeName(v.value.itemType)} values`;
  return `${valueTypeName(v.type)} ${JSON.stringify(typeof v.value === 'bigint' ? v.value.toString() : v.value)}`;
}

/** A numeric scalar as a JS number (64-bit integers only when exactly representable), else null. */
export function numberOf(v: GgufValue | undefined): number | null {
  if (!v) return null;
  if (typeof v.value === 'number') return v.value;
  if (typeof v.value === 'bigint') {
    const n = Number(v.value);
    return Number.isSafeInteger(n) ? n : null;
  }
  return null;
}

export function stringOf(v: GgufValue | undefined): string | null {
  return v && v.type === GgufValueType.STRING ? v.value : null;
}

/** The items of a numeric array as JS numbers (64-bit items only when all are safe integers), else null. */
export function numberArrayOf(v: GgufValue | undefined): number[] | null {
  if (!v || v.type !== GgufValueType.ARRAY) return null;
  const { items } = v.value;
  if (items instanceof BigUint64Array || items instanceof BigInt64Array) {
    const out = Array.from(items, Number);
    return out.every(Number.isSafeInteger) ? out : null;
  }
  if (Array.isArray(items)) return null;
  return Array.from(items);
}

export function stringArrayOf(v: GgufValue | undefined): string[] | null {
  return v && v.type === GgufValueType.ARRAY && v.value.itemType === GgufValueType.STRING ? v.value.items : null;
}

/** Constructors for the values webtune writes. */
export const gguf = {
  string: (value: string): GgufValue => ({ type: GgufValueType.STRING, value }),
  u32: (value: number): GgufValue => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufValueType.INT32, value }),
  u16: (value: number): GgufValue => ({ type: GgufValueType.UINT16, value }),
  f32: (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value }),
  strings: (items: string[]): GgufValue => ({ type: GgufValueType.ARRAY, value: { itemType: GgufValueType.STRING, items } }),
  f32s: (items: ArrayLike<number>): GgufValue => ({
    type: GgufValueType.ARRAY,
    value: { itemType: GgufValueType.FLOAT32, items: Float32Array.from(items) },
  }),
  i32s: (items: ArrayLike<number>): GgufValue => ({
    type: GgufValueType.ARRAY,
    value: { itemType: GgufValueType.INT32, items: Int32Array.from(items) },
  }),
};
