/**
 * The package loaded twice in one process, as CommonJS and as an ES
 * module, from the built `dist/`: what one copy records on `memory://`
 * the other copy reads.
 */
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(__dirname, '..')
const SCRIPT = resolve(__dirname, 'fixtures/dual-package/record-esm-read-cjs.mjs')

describe('dual package', () => {
  it('shares memory:// across both builds', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [SCRIPT], { cwd: ROOT, timeout: 20_000 })
    const result = JSON.parse(stdout) as { separateCopies: boolean; sameTracker: boolean; completedPaths: string[] }

    expect(result.separateCopies).toBe(true)
    expect(result.sameTracker).toBe(true)
    expect(result.completedPaths).toEqual(['/three', '/two', '/one'])
  })
})
