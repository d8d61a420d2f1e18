import { describe, expect, it } from 'vitest'
import { formatBytes, formatDuration, formatRequestDuration } from '../src/cli/format'

describe('formatDuration', () => {
  it.each([
    [0, '0.00s'],
    [4, '0.00s'],
    [120, '0.12s'],
    [1_234, '1.23s'],
    [9_994, '9.99s'],
    [9_996, '9.99s'],
    [10_000, '10.0s'],
    [12_345, '12.3s'],
    [59_940, '59.9s'],
    [59_960, '59.9s'],
    [59_999.9999, '1m00s'],
    [60_000, '1m00s'],
    [245_000, '4m05s'],
    [3_599_999, '59m59s'],
    [3_600_000, '1h00m'],
    [7_620_000, '2h07m'],
    [86_400_000, '1d00h'],
    [273_600_000, '3d04h'],
  ])('%d ms is %s', (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected)
  })

  it.each([undefined, -1, Number.NaN, Number.POSITIVE_INFINITY])('returns undefined for %s', (ms) => {
    expect(formatDuration(ms)).toBeUndefined()
  })
})

describe('formatRequestDuration', () => {
  it.each([
    [0, '0.00ms'],
    [0.29, '0.29ms'],
    [0.0049, '0.00ms'],
    [9.996, '9.99ms'],
    [9.9999996, '10.0ms'],
    [10, '10.0ms'],
    [99.96, '99.9ms'],
    [100, '100ms'],
    [999.6, '999ms'],
    [1_000, '1.00s'],
    [1_499.6, '1.49s'],
  ])('%d ms is %s', (ms, expected) => {
    expect(formatRequestDuration(ms)).toBe(expected)
  })

  it.each([undefined, -1, Number.NaN, Number.POSITIVE_INFINITY])('returns undefined for %s', (ms) => {
    expect(formatRequestDuration(ms)).toBeUndefined()
  })
})

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [4_300, '4.2 KiB'],
    [429_000, '419 KiB'],
    [1_048_000, '1023 KiB'],
    [1_048_064, '1.0 MiB'],
    [12 * 1024 * 1024, '12 MiB'],
    [5 * 1024 ** 3, '5.0 GiB'],
  ])('%d bytes is %s', (bytes, expected) => {
    expect(formatBytes(bytes)).toBe(expected)
  })

  it('returns undefined for no value', () => {
    expect(formatBytes(undefined)).toBeUndefined()
  })
})
