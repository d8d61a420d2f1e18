/**
 * The `memory://` tracker is one per process: every recorder that names it
 * writes to the same tracker, whose size its first recorder sets.
 */
import { describe, expect, it } from 'vitest'
import { MemoryTracker, topMiddleware } from '../src/index'

describe('memory:// shared by recorders', () => {
  it('warns a later recorder with another size', async () => {
    const warnings: string[] = []
    const logger = { warn: (_object: Record<string, unknown>, message: string) => warnings.push(message), error() {} }
    const first = topMiddleware({ trackerUrl: 'memory://', maxCompletedTasks: 3, logger, handleSignals: false })
    const second = topMiddleware({ trackerUrl: 'memory://', maxCompletedTasks: 50, logger, handleSignals: false })
    const third = topMiddleware({ trackerUrl: 'memory://', maxCompletedTasks: 3, logger, handleSignals: false })
    try {
      expect(second.recorder.tracker).toBe(first.recorder.tracker)
      expect(third.recorder.tracker).toBe(first.recorder.tracker)
      expect((first.recorder.tracker as MemoryTracker).maxCompletedTasks).toBe(3)
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain('keeps the 3 completed tasks that its first recorder set, so maxCompletedTasks 50 is ignored')
    } finally {
      await Promise.all([first.close(), second.close(), third.close()])
    }
  })
})
