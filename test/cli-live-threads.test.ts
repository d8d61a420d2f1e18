/**
 * `web-top-cli live` in a real pseudo-terminal (tmux on a private socket)
 * against a private Redis, on the records of one Python process that
 * serves requests on several threads. The header counts one process.
 * Grouping by process puts the threads in one group, and the Process
 * column still names each thread, also for two tasks of one id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/task/http-task'
import { formatIsoTime } from '../src/task/time'
import { startLiveSession } from './helpers/cli'
import { hasTmux, type TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'
import { activeTableLines } from './helpers/screen-tables'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-threads: the terminal tests are skipped because tmux is not on PATH')

const PREFIX = 'py:'
const PID = 7508
const ACTIVE_THREADS = [140585143763648, 140585135370944, 140585126978240]
const COMPLETED_THREADS = [140585118585536, 140585110192832]
const ACTIVE_TASK_IDS = [1, 2, 1]

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
  const nowMs = Date.now()
  // The Python tracker's field names: `pid:<pid> tid:<tid>`.
  for (const [index, thread] of ACTIVE_THREADS.entries()) {
    // Task ids may repeat across threads, as those of a counter per thread do.
    const task = pythonRecord(ACTIVE_TASK_IDS[index] ?? index, thread, nowMs - 1_000, null)
    await redis.client.hset(`${PREFIX}processors`, `pid:${PID} tid:${thread}`, JSON.stringify(task))
  }
  for (const [index, thread] of COMPLETED_THREADS.entries()) {
    const task = pythonRecord(10 + index, thread, nowMs - 2_000, nowMs - 1_500)
    await redis.client.lpush(`${PREFIX}past_tasks`, JSON.stringify(task))
  }
})

afterAll(async () => {
  await redis?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live on one process with threads (needs tmux)', () => {
  let session: TmuxSession | undefined

  afterAll(() => {
    session?.kill()
  })

  it('counts the threads as one process', async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('Active HTTP requests (3)'), {
      TOP_TRACKER_PREFIX: PREFIX,
      ACTIVE_COLUMNS: 'Process,Worker,Path',
    })
    const header = session.capture().split('\n')[1] ?? ''

    expect(header).toMatch(/^Hosts 1 {2}Processes 1 {2}Active 3 {2}/)
  })

  it('keeps the thread in the Process column', () => {
    const lines = activeTableLines(session?.capture() ?? '')

    for (const thread of ACTIVE_THREADS) {
      expect(lines.some((line) => line.includes(`pyhost/${PID}/${thread}`))).toBe(true)
    }
  })

  it('shows one task id on two threads twice', () => {
    const lines = activeTableLines(session?.capture() ?? '')

    expect(lines.filter((line) => line.includes('/py/1'))).toHaveLength(2)
  })

  it('groups the threads under their process', async () => {
    session?.sendKeys('h')
    await session?.waitForScreen((text) => text.includes('grouped by host'), 15_000, 'grouping by host')
    session?.sendKeys('h')
    const screen = (await session?.waitForScreen((text) => text.includes('grouped by process'), 15_000, 'grouping by process')) ?? ''
    const titles = activeTableLines(screen).filter((line) => line.startsWith('Process '))

    expect(titles).toEqual([`Process pyhost/${PID} (3)`])
  })
})

function pythonRecord(taskId: number, thread: number, startedMs: number, endedMs: number | null): HttpTask {
  return {
    task_id: taskId,
    host_name: 'pyhost',
    process_id: PID,
    thread_id: thread,
    process_internal_id: null,
    processor_name: `<Worker ${thread}>`,
    started_at: formatIsoTime(startedMs),
    updated_at: formatIsoTime(endedMs ?? startedMs),
    ended_at: endedMs === null ? null : formatIsoTime(endedMs),
    recorded_successfully: endedMs === null ? null : true,
    method: 'GET',
    path: `/py/${taskId}`,
    client_ip_address: '10.0.0.1',
    request_headers: [['HOST', 'example.com']],
    status_code: endedMs === null ? null : 200,
  }
}
