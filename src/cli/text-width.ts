/**
 * Display width of text in a terminal: East Asian wide and fullwidth
 * characters and emoji take 2 columns, combining marks and format
 * characters 0, everything else 1. Covers the common ranges, not the whole
 * of Unicode's East Asian Width table, and expects text that went through
 * `sanitizeText` (control characters have no width here).
 */

/** Marks a cut: one column wide in every terminal. */
export const ELLIPSIS = '…'

/** Code point ranges of East Asian wide and fullwidth characters, ascending. */
const WIDE_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x1100, 0x115f], // Hangul Jamo initial consonants
  [0x2e80, 0x303e], // CJK radicals, Kangxi radicals, CJK symbols and punctuation
  [0x3041, 0x33ff], // Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo, CJK compatibility
  [0x3400, 0x4dbf], // CJK unified ideographs extension A
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xa000, 0xa4cf], // Yi syllables and radicals
  [0xa960, 0xa97f], // Hangul Jamo extended A
  [0xac00, 0xd7a3], // Hangul syllables
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe10, 0xfe19], // vertical forms
  [0xfe30, 0xfe6f], // CJK compatibility forms, small form variants
  [0xff00, 0xff60], // fullwidth ASCII variants
  [0xffe0, 0xffe6], // fullwidth signs
  [0x16fe0, 0x16fe4], // ideographic symbols
  [0x17000, 0x18cff], // Tangut, Khitan
  [0x1b000, 0x1b2ff], // Kana supplement and extensions, Nushu
  [0x1f200, 0x1f2ff], // enclosed ideographic supplement
  [0x20000, 0x2fffd], // CJK unified ideographs extensions B to F
  [0x30000, 0x3fffd], // CJK unified ideographs extensions G and H
]

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/
const EMOJI_PRESENTATION = /^\p{Emoji_Presentation}$/u
// Nonspacing and enclosing marks, format characters (ZWJ, ZWSP, BOM) and
// the Hangul medial vowels and final consonants that join the syllable before them.
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\u1160-\u11ff\ud7b0-\ud7ff]$/u

/** Returns the number of columns a string occupies in a terminal. */
export function textWidth(text: string): number {
  if (PRINTABLE_ASCII.test(text)) return text.length

  let width = 0
  for (const char of text) width += charWidth(char)
  return width
}

/**
 * Returns 0, 1 or 2: the columns one character (one code point) occupies.
 * A regional indicator counts 1, so the pair that makes a flag (🇫🇮)
 * takes 2 columns, as tmux and most terminals draw it.
 */
export function charWidth(char: string): number {
  const codePoint = char.codePointAt(0) ?? 0
  if (codePoint < 0x7f) return codePoint < 0x20 ? 0 : 1
  if (codePoint < 0xa0) return 0
  if (isRegionalIndicator(codePoint)) return 1
  if (ZERO_WIDTH.test(char)) return 0
  if (isWide(codePoint) || EMOJI_PRESENTATION.test(char)) return 2
  return 1
}

/**
 * Cuts text to at most `maxWidth` columns, ending a cut with `…`. A wide
 * character that would straddle the limit is left out whole, and combining
 * marks stay with the character they follow.
 */
export function cutToWidth(text: string, maxWidth: number): string {
  if (maxWidth <= 0) return ''
  if (textWidth(text) <= maxWidth) return text

  const limit = maxWidth - textWidth(ELLIPSIS)
  let kept = ''
  let used = 0
  let indicatorsInRow = 0
  for (const char of text) {
    const width = charWidth(char)
    if (used + width > limit) break
    kept += char
    used += width
    indicatorsInRow = isRegionalIndicator(char.codePointAt(0) ?? 0) ? indicatorsInRow + 1 : 0
  }
  // Half of a flag would show as a stray letter box, so a flag is kept whole or left out.
  if (indicatorsInRow % 2 === 1) kept = kept.slice(0, -2)
  return kept + ELLIPSIS
}

/** Returns true for the regional indicator symbols 🇦 to 🇿, two of which make a flag. */
export function isRegionalIndicator(codePoint: number): boolean {
  return codePoint >= 0x1f1e6 && codePoint <= 0x1f1ff
}

/**
 * Splits text at spaces into rows of at most `width` columns. A word wider
 * than a row is cut to it. An infinite width gives one row.
 */
export function wrapWords(text: string, width: number): string[] {
  if (!Number.isFinite(width)) return [text]
  const rows: string[] = []
  let row = ''
  for (const word of text.split(' ')) {
    if (word === '') continue
    const candidate = row === '' ? word : `${row} ${word}`
    if (textWidth(candidate) <= width) {
      row = candidate
      continue
    }
    if (row !== '') rows.push(row)
    row = cutToWidth(word, width)
  }
  if (row !== '' || rows.length === 0) rows.push(row)
  return rows
}

/** Cuts or pads text to exactly `width` columns. */
export function fitToWidth(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const cut = cutToWidth(text, width)
  const padding = ' '.repeat(Math.max(0, width - textWidth(cut)))
  return align === 'left' ? cut + padding : padding + cut
}

function isWide(codePoint: number): boolean {
  if (codePoint < 0x1100) return false
  for (const [first, last] of WIDE_RANGES) {
    if (codePoint < first) return false
    if (codePoint <= last) return true
  }
  return false
}
