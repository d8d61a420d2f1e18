/**
 * Makes any text from a task record safe to print in a terminal. Records
 * come from clients (paths, user agents) and from any writer, so a field may
 * hold escape sequences that would clear, recolour or retitle the terminal,
 * write to its clipboard (OSC 52) or break a table row.
 *
 * Placeholders:
 * - C0 controls (NUL, backspace, tab, newline, carriage return, ESC, ...) and
 *   DEL become their Unicode control pictures: `␀ ␈ ␉ ␊ ␍ ␛ ␡`. ESC is
 *   the start of every CSI and OSC sequence, so `\x1b[2J` prints as `␛[2J`.
 * - C1 controls (U+0080 to U+009F, among them the one-character CSI and OSC)
 *   and the characters that hide text (`HIDING`) have no control picture
 *   and become their escape, for example `\u009b`.
 * - Lone UTF-16 surrogates become U+FFFD. Bytes that are not valid UTF-8
 *   already arrive as U+FFFD, because the Redis client decodes replies as UTF-8.
 */

/** Max number of nonspacing or enclosing marks kept in a row. Real scripts stack a few, Zalgo text dozens. */
const MAX_MARKS_IN_ROW = 8

/**
 * Characters that hide or disguise text: Unicode's default-ignorable code
 * points (zero-width characters, bidirectional formatting, Hangul fillers,
 * variation selectors, tag characters, …), the line and paragraph
 * separators, the braille blank and the interlinear annotation characters.
 * A zero-width joiner and the text and emoji presentation selectors
 * (U+FE0E, U+FE0F) stay, because emoji are built with them, unless the
 * joiner is in a run of two or more, which no emoji has. Marks past
 * `MAX_MARKS_IN_ROW` after one base character are included too, so a tall
 * stack cannot spill over the rows above and below.
 */
const HIDING =
  String.raw`(?![\u200d\ufe0e\ufe0f])\p{Default_Ignorable_Code_Point}|[\u2028\u2029\u2800\ufff9-\ufffb]` +
  String.raw`|\u200d(?=\u200d)|(?<=\u200d)\u200d` +
  String.raw`|[\p{Mn}\p{Me}](?<=[\p{Mn}\p{Me}]{${MAX_MARKS_IN_ROW + 1}})`

/** Characters that a terminal may act on, that reorder or break a line, or that hide text. */
const UNSAFE = new RegExp(String.raw`[\0-\x1f\x7f-\x9f\p{Cs}]|${HIDING}`, 'gu')

/**
 * The characters of `UNSAFE` that `JSON.stringify` leaves raw. C0 controls
 * are left out: JSON text escapes them inside strings, and the newlines of
 * indented JSON must stay.
 */
const UNSAFE_IN_JSON = new RegExp(String.raw`[\x7f-\x9f]|${HIDING}`, 'gu')

/** The control picture of DEL. */
const DEL_PICTURE = '\u2421'

/** Replaces every unsafe character of `text` by a visible placeholder. */
export function sanitizeText(text: string): string {
  UNSAFE.lastIndex = 0
  if (!UNSAFE.test(text)) return text
  return text.replace(UNSAFE, placeholderOf)
}

/** Returns the placeholder printed instead of one unsafe character. */
export function placeholderOf(char: string): string {
  const codePoint = char.codePointAt(0) ?? 0
  if (codePoint < 0x20) return String.fromCharCode(0x2400 + codePoint)
  if (codePoint === 0x7f) return DEL_PICTURE
  if (codePoint >= 0xd800 && codePoint <= 0xdfff) return '\ufffd'
  return unicodeEscape(char)
}

/**
 * Escapes, in JSON text, the characters that `JSON.stringify` leaves raw but
 * a terminal may act on or that hide text (DEL, C1 controls, bidirectional
 * formatting, line separators, invisible characters). The result is still
 * valid JSON with the same values.
 */
export function escapeJsonForTerminal(json: string): string {
  return json.replace(UNSAFE_IN_JSON, unicodeEscape)
}

/**
 * Returns the `\\uXXXX` escape of each UTF-16 code unit of a character, so
 * that a character beyond the Basic Multilingual Plane becomes the two
 * escapes that JSON text uses for it.
 */
function unicodeEscape(char: string): string {
  let escaped = ''
  for (let index = 0; index < char.length; index++) {
    escaped += `\\u${char.charCodeAt(index).toString(16).padStart(4, '0')}`
  }
  return escaped
}
