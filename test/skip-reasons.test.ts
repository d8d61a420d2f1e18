/**
 * Which skip reasons concern the active tasks: live carries the others
 * from its last read of the completed list to the reads without it.
 */
import { describe, expect, it } from 'vitest'
import { addActiveKeySkip, addActiveSkip, addKeySkip, isActiveRecordReason } from '../src/trackers/snapshot'
import type { TaskSnapshot } from '../src/trackers/tracker'

function emptySnapshot(): TaskSnapshot {
  return { active: new Map(), completed: [], skipped: 0, skipReasons: [], lastClearedAt: null }
}

describe('isActiveRecordReason', () => {
  it('matches the processors key under a prefix', () => {
    const snapshot = emptySnapshot()
    addActiveKeySkip(snapshot, 'key shop:processors: wrong key type, not a hash')
    expect(snapshot.skipReasons.map(isActiveRecordReason)).toEqual([true])
    expect(snapshot.activeSkipped).toBe(1)
  })

  it('matches an active record', () => {
    const snapshot = emptySnapshot()
    addActiveSkip(snapshot, 'host/1-0-1', 'invalid JSON')
    expect(isActiveRecordReason(snapshot.skipReasons[0] as string)).toBe(true)
  })

  it('leaves a past_tasks reason that names processors', () => {
    const snapshot = emptySnapshot()
    addKeySkip(snapshot, 'key shop:past_tasks: wrong key type, processors: not a list')
    expect(isActiveRecordReason(snapshot.skipReasons[0] as string)).toBe(false)
  })
})
