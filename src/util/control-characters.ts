/**
 * Control characters in text that web-top prints on one line, such as a
 * key prefix. A newline, carriage return or line separator would split a
 * log line or a CLI message in two, and an escape could act on the terminal.
 */

/**
 * C0 controls (newline, tab, escape, …), DEL and C1 controls (Unicode's
 * category Cc), and the line and paragraph separators U+2028 and U+2029,
 * which editors and log viewers show as line breaks.
 */
const CONTROL_CHARACTER = /[\p{Cc}\u2028\u2029]/u

/** Returns whether `text` contains a control character or a line or paragraph separator. */
export function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTER.test(text)
}

/** Rule for a key prefix, quoted by the messages that reject one with a control character or line separator. */
export const KEY_PREFIX_WITHOUT_CONTROLS =
  'a key prefix without control characters or line separators, such as a newline, tab, escape or U+2028'
