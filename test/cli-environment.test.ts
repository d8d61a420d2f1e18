/**
 * The built CLI with its environment variables set but empty, which it
 * reads as unset, as the recorder does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  const record = { task_id: 'env-1', method: 'GET', path: '/env/done', status_code: 200 }
  await redis.client.lpush('past_tasks', JSON.stringify(record))
})

afterAll(async () => {
  await redis.close()
})

describe('web-top-cli with empty environment variables', () => {
  it('reads empty recent variables as unset', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url], {
      env: { TOP_RECENT_COLUMNS: '', TOP_RECENT_LIMIT: '', TOP_RECENT_MODE: '', TOP_TRACKER_PREFIX: '' },
    })

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/env/done')
    expect(result.stdout).toContain('Method')
  })

  it('reads empty live variables as unset', async () => {
    const result = await runCli(['live', '--tracker-url', redis.url], {
      env: { ACTIVE_COLUMNS: '', COMPLETED_COLUMNS: '', TOP_REFRESH_RATE: '' },
      interruptWhen: (stdout) => stdout.includes('/env/done'),
    })

    expect(result.stderr).not.toContain('invalid')
    expect(result.stdout).toContain('/env/done')
  })

  it('still rejects an invalid value', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url], { env: { TOP_RECENT_LIMIT: '0' } })

    expect(result.code).toBe(2)
    expect(result.stderr).toContain('TOP_RECENT_LIMIT')
  })
})
