import { describe, expect, it } from 'vitest'
import { describeSkipped } from '../src/cli/skipped'

describe('describeSkipped', () => {
  it('lists every reason it has', () => {
    expect(describeSkipped(2, ['invalid JSON', 'not a JSON object'])).toBe(
      '2 records skipped (invalid JSON; not a JSON object)',
    )
  })

  it('counts the records without a listed reason', () => {
    const reasons = ['r1', 'r2', 'r3', 'r4', 'r5']
    expect(describeSkipped(12, reasons)).toBe('12 records skipped (r1; r2; r3; r4; r5; and 7 more)')
  })

  it('says one record in the singular', () => {
    expect(describeSkipped(1, ['invalid JSON'])).toBe('1 record skipped (invalid JSON)')
  })

  it('prints the count alone without reasons', () => {
    expect(describeSkipped(3, [])).toBe('3 records skipped')
  })

  it('neutralises control characters in a reason', () => {
    expect(describeSkipped(1, ['bad \x1b[2J'])).toBe('1 record skipped (bad ␛[2J)')
  })
})
