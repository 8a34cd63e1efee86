/** Places a JSON.parse failure at its line and column, for messages about config and model files. */

/** A JSON.parse failure placed at its line and column (V8 gives a character position, or none). */
export function jsonErrorAt(text: string, e: unknown): string {
  const message = (e as Error).message;
  const m = /position (\d+)/.exec(message);
  const pos = m ? Number(m[1]) : /Unexpected end/.test(message) ? text.length : undefined;
  if (pos === undefined) return `not JSON: ${message}`;
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `line ${line}, column ${column}: not JSON: ${message.replace(/ in JSON at position \d+.*$/, '')}`;
}
