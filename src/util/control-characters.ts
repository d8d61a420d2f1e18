/**
 * Control characters in text that web-top prints on one line, such as a
 * key prefix: a newline or carriage return would split a log line or a
 * CLI message in two, and an escape could act on the terminal.
 */

/** C0 controls (newline, tab, escape, …), DEL and C1 controls: Unicode's category Cc. */
const CONTROL_CHARACTER = /\p{Cc}/u

/** Returns whether `text` contains a control character. */
export function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTER.test(text)
}

/** What a key prefix must be, for the messages that reject one with a control character. */
export const KEY_PREFIX_WITHOUT_CONTROLS = 'a key prefix without control characters such as a newline, tab or escape'
