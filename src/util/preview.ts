/**
 * A value from someone else's file, shortened for an error message: a 10 MB string or a
 * million-element list named in a message would make the message the problem.
 */
export function preview(value: unknown, maxChars = 120): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // Too deeply nested for JSON.stringify's recursion.
    return '(a value too deeply nested to show)';
  }
  if (text === undefined) return String(value);
  return text.length > maxChars ? `${text.slice(0, maxChars)}… (${text.length} characters)` : text;
}
