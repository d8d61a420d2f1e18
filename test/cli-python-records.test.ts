/**
 * The built CLI reading records shaped as the Python tracker writes them:
 * `host` and `uri` null, the Host in the request headers, names upper-cased.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTextFilter } from '../src/cli/filters'
import type { HttpTask } from '../src/task/http-task'
import { runCli } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'

const PYTHON_RECORD: HttpTask = {
  task_id: 3,
  host_name: 'vm',
  process_id: 7508,
  thread_id: 140585143763648,
  started_at: '2026-12-04T15:00:00.860445+00:00',
  ended_at: '2026-12-04T15:00:00.861099+00:00',
  recorded_successfully: true,
  protocol: null,
  host: null,
  method: 'GET',
  path: '/api/candles',
  uri: null,
  client_ip_address: '10.0.0.1',
  request_headers: [
    ['HOST', 'example.com'],
    ['USER-AGENT', 'python-requests/2.27.1'],
  ],
  status_code: 200,
}

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.lpush('past_tasks', JSON.stringify(PYTHON_RECORD))
})

afterAll(async () => {
  await redis.close()
})

describe('Python tracker records', () => {
  it('match --host by the Host header', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--host', 'example.com'])

    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('/api/candles')
  })

  it('miss --host for another host', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--host', 'other.example'])

    expect(result.code).toBe(0)
    expect(result.stdout).not.toContain('/api/candles')
  })

  it('match the live text filter by the Host header', () => {
    expect(createTextFilter('example.com')(PYTHON_RECORD)).toBe(true)
  })
})
