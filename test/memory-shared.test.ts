/**
 * The `memory://` tracker is one per process: every recorder that names it
 * writes to the same tracker, whose size its first recorder sets.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { MemoryTracker, topMiddleware } from '../src/index'
import { runNode } from './helpers/node-process'

/**
 * A `node:cluster` primary whose one worker sets up `topMiddleware` on
 * `memory://` with a logger that prints warnings, then exits. It runs
 * from a file, because a worker runs the primary's script file again.
 */
const CLUSTER_SCRIPT = `
  const cluster = require('node:cluster')
  const { topMiddleware } = require(process.env.WEB_TOP_INDEX)
  if (cluster.isPrimary) {
    cluster.fork().on('exit', (code) => console.log('worker exited ' + code))
  } else {
    const logger = { warn: (_object, message) => console.log('warn: ' + message), error() {} }
    const middleware = topMiddleware({ trackerUrl: 'memory://', logger, handleSignals: false })
    middleware.close().then(() => process.exit(0))
  }
`

describe('memory:// shared by recorders', () => {
  it('warns a later recorder with another size', async () => {
    const warnings: string[] = []
    const logger = { warn: (_object: Record<string, unknown>, message: string) => warnings.push(message), error() {} }
    const first = topMiddleware({ trackerUrl: 'memory://', maxCompletedTasks: 3, logger, handleSignals: false })
    const second = topMiddleware({ trackerUrl: 'memory://', maxCompletedTasks: 50, logger, handleSignals: false })
    const third = topMiddleware({ trackerUrl: 'memory://', maxCompletedTasks: 3, logger, handleSignals: false })
    // A recorder that requests no size keeps the tracker's size.
    const fourth = topMiddleware({ trackerUrl: 'memory://', logger, handleSignals: false })
    try {
      expect(second.recorder.tracker).toBe(first.recorder.tracker)
      expect(third.recorder.tracker).toBe(first.recorder.tracker)
      expect(fourth.recorder.tracker).toBe(first.recorder.tracker)
      expect((first.recorder.tracker as MemoryTracker).maxCompletedTasks).toBe(3)
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain('keeps the 3 completed tasks that its first recorder set, so maxCompletedTasks 50 is ignored')
    } finally {
      await Promise.all([first.close(), second.close(), third.close(), fourth.close()])
    }
  })
})

describe('memory:// in a cluster worker', () => {
  it('warns that it holds one worker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'web-top-cluster-'))
    const script = join(dir, 'cluster-app.js')
    writeFileSync(script, CLUSTER_SCRIPT)
    let result
    try {
      result = await runNode(['--import', 'tsx', script], { WEB_TOP_INDEX: resolve('src/index.ts') }, 20_000)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(
      'warn: web-top records to the memory tracker of this cluster worker, which holds only its own requests',
    )
    expect(result.stdout).toContain('worker exited 0')
  })

  it('does not warn in a single process', () => {
    const warnings: string[] = []
    const logger = { warn: (_object: Record<string, unknown>, message: string) => warnings.push(message), error() {} }
    const middleware = topMiddleware({ trackerUrl: 'memory://', logger, handleSignals: false })
    expect(warnings.filter((warning) => warning.includes('cluster worker'))).toEqual([])
    return middleware.close()
  })
})
