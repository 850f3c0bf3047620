/** Characters as a reader counts them: code points, surrounding whitespace ignored. */
export function responseChars(text: string): number {
  return Array.from(text.trim()).length;
}
