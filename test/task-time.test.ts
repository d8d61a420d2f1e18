import { describe, expect, it } from 'vitest'
import { formatIsoTime, parseIsoTime } from '../src/task/time'

describe('parseIsoTime', () => {
  const reference = Date.UTC(2022, 7, 23, 15, 49, 10, 905)

  it.each([
    ['2022-08-23T15:49:10.905607+00:00', reference + 0.607],
    ['2022-08-23T15:49:10.905Z', reference],
    ['2022-08-23T15:49:10.905z', reference],
    ['2022-08-23T17:49:10.905+02:00', reference],
    ['2022-08-23T10:49:10.905-0500', reference],
    ['2022-08-23T15:49:10.9050000+00', reference],
    ['2022-08-23 15:49:10.905+00:00', reference],
  ])('reads %s', (text, expected) => {
    expect(parseIsoTime(text)).toBeCloseTo(expected, 3)
  })

  it('reads a timestamp with no fraction', () => {
    expect(parseIsoTime('2022-08-23T15:49:10+00:00')).toBe(Date.UTC(2022, 7, 23, 15, 49, 10))
  })

  it.each([['yesterday'], [''], [42], [null], ['2022-08-23'], ['x'.repeat(100)]])(
    'returns undefined for %j',
    (value) => {
      expect(parseIsoTime(value)).toBeUndefined()
    },
  )
})

describe('formatIsoTime', () => {
  it('writes microseconds and a +00:00 offset', () => {
    const text = formatIsoTime(Date.UTC(2026, 11, 4, 15, 0, 0, 861) + 0.753)
    expect(text).toBe('2026-12-04T15:00:00.861753+00:00')
  })

  it('pads fractions and crosses seconds', () => {
    const second = Date.UTC(2026, 11, 31, 23, 59, 59)
    expect(formatIsoTime(second + 0.004)).toBe('2026-12-31T23:59:59.000004+00:00')
    expect(formatIsoTime(second + 7.25)).toBe('2026-12-31T23:59:59.007250+00:00')
    expect(formatIsoTime(second + 999.9996)).toBe('2026-12-31T23:59:59.999999+00:00')
    expect(formatIsoTime(second + 1000)).toBe('2027-01-01T00:00:00.000000+00:00')
    expect(formatIsoTime(second - 1)).toBe('2026-12-31T23:59:58.999000+00:00')
  })

  it('matches toISOString over a range of times', () => {
    for (let epochMs = Date.UTC(2026, 0, 1) - 2500; epochMs < Date.UTC(2026, 0, 1) + 2500; epochMs += 7.125) {
      const whole = Math.floor(epochMs)
      const expected = `${new Date(whole).toISOString().slice(0, 23)}${String(Math.round((epochMs - whole) * 1000)).padStart(3, '0')}+00:00`
      expect(formatIsoTime(epochMs)).toBe(expected)
    }
  })

  it('round-trips through parseIsoTime', () => {
    const epochMs = Date.UTC(2026, 0, 1, 0, 0, 0, 1) + 0.5
    expect(parseIsoTime(formatIsoTime(epochMs))).toBeCloseTo(epochMs, 3)
  })
})
