import { describe, expect, it } from 'vitest'
import { charWidth, cutToWidth, fitToWidth, textWidth } from '../src/cli/text-width'

describe('textWidth', () => {
  it.each([
    ['plain ASCII', 'GET /api', 8],
    ['empty string', '', 0],
    ['CJK ideographs', '中文路径', 8],
    ['Hiragana and Katakana', 'ひらカタ', 8],
    ['Hangul syllables', '한국어', 6],
    ['fullwidth Latin', 'ＡＢＣ', 6],
    ['ideographic space', '\u3000', 2],
    ['emoji', '🚀🔥', 4],
    ['emoji from the supplemental symbols block', '🤖', 2],
    ['combining acute accent', 'e\u0301', 1],
    ['combining marks on CJK', '中\u0300', 2],
    ['zero-width joiner', 'a\u200db', 2],
    ['variation selector', '\u2764\ufe0f', 1],
    ['Latin-1 letters', 'café', 4],
    ['box drawing', '─│', 2],
  ])('%s', (_name, text, expected) => {
    expect(textWidth(text)).toBe(expected)
  })
})

describe('charWidth', () => {
  it('counts C0 and C1 controls as zero columns', () => {
    expect(charWidth('\x1b')).toBe(0)
    expect(charWidth('\x9b')).toBe(0)
  })

  it('counts astral CJK ideographs as two columns', () => {
    expect(charWidth('\u{20000}')).toBe(2)
  })
})

describe('cutToWidth', () => {
  it('keeps text that fits', () => {
    expect(cutToWidth('/api/orders', 11)).toBe('/api/orders')
  })

  it('cuts ASCII and marks the cut', () => {
    expect(cutToWidth('/api/orders', 6)).toBe('/api/…')
  })

  it('never splits a wide character', () => {
    const cut = cutToWidth('中文路径', 6)
    expect(cut).toBe('中文…')
    expect(textWidth(cut)).toBe(5)
  })

  it('leaves out a wide character that would straddle the limit', () => {
    expect(cutToWidth('a中文', 3)).toBe('a…')
  })

  it('never splits an emoji surrogate pair', () => {
    const cut = cutToWidth('🚀🚀🚀', 4)
    expect(cut).toBe('🚀…')
    expect([...cut].every((char) => char !== '\ud83d')).toBe(true)
  })

  it('keeps combining marks with their base character', () => {
    expect(cutToWidth('e\u0301e\u0301e\u0301', 2)).toBe('e\u0301…')
  })

  it('returns the ellipsis alone for width 1', () => {
    expect(cutToWidth('abc', 1)).toBe('…')
  })

  it('returns nothing for width 0', () => {
    expect(cutToWidth('abc', 0)).toBe('')
  })
})

describe('fitToWidth', () => {
  it('pads to the left for right alignment', () => {
    expect(fitToWidth('200', 5, 'right')).toBe('  200')
  })

  it('pads wide text by display width', () => {
    expect(fitToWidth('中文', 6)).toBe('中文  ')
  })

  it('pads after a cut that lost a wide character', () => {
    const fitted = fitToWidth('中文路径', 4)
    expect(fitted).toBe('中… ')
    expect(textWidth(fitted)).toBe(4)
  })
})
