/** The help of `web-top-cli prune`, which reads TOP_MAX_COMPLETED_TASKS as the apps do. */
import { describe, expect, it } from 'vitest'
import { runCli } from './helpers/cli'

describe('prune help', () => {
  it('names TOP_MAX_COMPLETED_TASKS', async () => {
    const result = await runCli(['prune', '--help'])

    expect(result.code).toBe(0)
    expect(result.stdout).toContain('TOP_MAX_COMPLETED_TASKS entries (default: 256)')
  })
})
