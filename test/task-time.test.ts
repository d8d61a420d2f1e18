import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { formatIsoTime, isBeyondClockSkew, MAX_CLOCK_SKEW_MS, parseIsoTime } from '../src/task/time'

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

  it.each([
    ['2026-13-45T99:99:99Z'],
    ['2026-00-10T10:00:00Z'],
    ['2026-13-10T10:00:00Z'],
    ['2026-12-00T10:00:00Z'],
    ['2026-12-32T10:00:00Z'],
    ['2026-04-31T10:00:00Z'],
    ['2026-02-29T10:00:00Z'],
    ['1900-02-29T10:00:00Z'],
    ['2026-12-04T24:00:00Z'],
    ['2026-12-04T10:60:00Z'],
    ['2026-12-04T10:00:60Z'],
    ['2026-12-04T10:00:00+24:00'],
    ['2026-12-04T10:00:00-2400'],
    ['2026-12-04T10:00:00+01:60'],
    ['2026-12-04T10:00:00+99'],
  ])('rejects the out-of-range %s', (text) => {
    expect(parseIsoTime(text)).toBeUndefined()
  })

  it.each([
    ['2024-02-29T10:00:00Z', Date.UTC(2024, 1, 29, 10)],
    ['2000-02-29T10:00:00Z', Date.UTC(2000, 1, 29, 10)],
    ['2026-12-31T23:59:59.999999+00:00', Date.UTC(2026, 11, 31, 23, 59, 59, 999) + 0.999],
    ['2026-12-04T00:00:00+23:59', Date.UTC(2026, 11, 4) - (23 * 60 + 59) * 60_000],
    ['2026-12-04T00:00:00-23:59', Date.UTC(2026, 11, 4) + (23 * 60 + 59) * 60_000],
  ])('reads the edge value %s', (text, expected) => {
    expect(parseIsoTime(text)).toBeCloseTo(expected, 3)
  })

  it('reads the years 0 to 99 as written', () => {
    expect(parseIsoTime('0099-06-01T00:00:00Z')).toBe(new Date('0099-06-01T00:00:00Z').getTime())
    expect(parseIsoTime('0001-01-01T00:00:00Z')).toBe(new Date('0001-01-01T00:00:00Z').getTime())
  })

  it('matches Date over every day of four centuries', () => {
    for (let dayMs = Date.UTC(1900, 0, 1); dayMs < Date.UTC(2300, 0, 1); dayMs += 86_400_000) {
      const text = new Date(dayMs + 45_296_789).toISOString() // 12:34:56.789 of the day
      expect(parseIsoTime(text)).toBe(dayMs + 45_296_789)
    }
  })

  it('matches Date for the writers\' form over four centuries', () => {
    for (let dayMs = Date.UTC(1900, 0, 1); dayMs < Date.UTC(2300, 0, 1); dayMs += 86_400_000) {
      const text = `${new Date(dayMs + 45_296_789).toISOString().slice(0, -1)}654+00:00`
      expect(parseIsoTime(text)).toBeCloseTo(dayMs + 45_296_789.654, 6)
    }
  })

  it.each([
    ['2026-12-04T10:00:00.000000+01:00', Date.UTC(2026, 11, 4, 9)],
    ['2026-12-04T10:00:00.000000-01:00', Date.UTC(2026, 11, 4, 11)],
    ['2026-12-04T10:00:00.000000+00:30', Date.UTC(2026, 11, 4, 9, 30)],
  ])('reads the offset of %s', (text, expected) => {
    expect(parseIsoTime(text)).toBe(expected)
  })

  it.each([
    ['2026-02-29T10:00:00.000000+00:00'],
    ['2026-04-31T10:00:00.000000+00:00'],
    ['2026-00-10T10:00:00.000000+00:00'],
    ['2026-12-04T24:00:00.000000+00:00'],
    ['2026-12-04T10:60:00.000000+00:00'],
    ['2026-12-04T10:00:60.000000+00:00'],
    ['2026-12-04T10:00:00.0000x0+00:00'],
  ])('rejects the writers\' form with %s', (text) => {
    expect(parseIsoTime(text)).toBeUndefined()
  })

  it('reads every time in the Python tracker fixture', () => {
    const fixture = readFileSync(resolve(__dirname, 'fixtures/python-tracker-records.json'), 'utf8')
    const times = [...fixture.matchAll(/"(?:started_at|ended_at|last_cleared_at)": "([^"]+)"/g)].map((match) => match[1])
    expect(times.length).toBeGreaterThan(0)
    for (const text of times) {
      const parsed = parseIsoTime(text)
      expect(parsed, text).toBeDefined()
      expect(parsed, text).toBeCloseTo(new Date(text as string).getTime(), -1)
    }
  })
})

describe('isBeyondClockSkew', () => {
  const nowMs = Date.UTC(2026, 11, 4, 15)

  it('allows times up to the skew ahead', () => {
    expect(isBeyondClockSkew(nowMs, nowMs)).toBe(false)
    expect(isBeyondClockSkew(nowMs - 3_600_000, nowMs)).toBe(false)
    expect(isBeyondClockSkew(nowMs + MAX_CLOCK_SKEW_MS, nowMs)).toBe(false)
  })

  it('flags times past the skew ahead', () => {
    expect(isBeyondClockSkew(nowMs + MAX_CLOCK_SKEW_MS + 1, nowMs)).toBe(true)
    expect(isBeyondClockSkew(Date.UTC(2099, 0, 1), nowMs)).toBe(true)
  })
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
