/**
 * `web-top-cli live` in a real pseudo-terminal (tmux on a private socket)
 * with an app that records no request (`completedSampleRate: 0`). Such
 * requests start and end without a publish, so live learns of them only
 * from its reads. A request that ends while the next one takes its
 * entry in `processors`, with a record of the same length, must leave the
 * active table at the next read, not only when its record is verified.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { SAMPLED_OUT_TAG } from '../src/task/derived'
import { startLiveSession } from './helpers/cli'
import { sendRequest, startApp, waitFor, type TestApp } from './helpers/http'
import { hasTmux, type TmuxSession } from './helpers/pty'
import { activeRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-sampled-out: the tests are skipped because tmux is not on PATH')

let redis: TestRedis
let app: TestApp | undefined
let session: TmuxSession | undefined

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

afterEach(async () => {
  session?.kill()
  session = undefined
  await app?.close()
  app = undefined
})

/** Waits until the processors hash has one field, for `path`, and returns its name and its record's length. */
async function waitForOneField(path: string): Promise<{ field: string; length: number }> {
  return waitFor(`the active entry of ${path}`, async () => {
    const entries = Object.entries(await redis.client.hgetall('processors'))
    const [entry] = entries
    if (entries.length !== 1 || entry === undefined || !entry[1].includes(`"path":"${path}"`)) return undefined
    return { field: entry[0], length: Buffer.byteLength(entry[1]) }
  })
}

describe.skipIf(!TMUX_AVAILABLE)('live with sampled-out requests (needs tmux)', () => {
  it('drops an ended request whose slot is reused', { timeout: 30_000 }, async () => {
    const running = await startApp('express5', { trackerUrl: redis.url, completedSampleRate: 0 })
    app = running
    session = await startLiveSession(redis.url, (screen) => screen.includes('q quit'))
    const live = session

    const first = sendRequest(`${running.url}/wait`)
    const before = await waitForOneField('/wait')
    await live.waitForScreen((screen) => screen.includes('/wait'), 15_000, 'the first request')

    // `/hang` has the length of `/wait` and never responds, so the app's close ends it.
    running.releaseWaiting()
    await first
    const second = sendRequest(`${running.url}/hang`).catch(() => undefined)
    const after = await waitForOneField('/hang')
    expect(after.field).toBe(before.field)
    expect(after.length).toBe(before.length)

    // Three refreshes of 1 s, where the verification alone would take up to 30.
    const screen = await live.waitForScreen(
      (text) => text.includes('/hang') && !text.includes('/wait'),
      3_000,
      'the second request in place of the first',
    )
    expect(screen).not.toContain('/wait')
    await app.close()
    app = undefined
    await second
  })

  it('drops an ended request whose slot a published one took', { timeout: 30_000 }, async () => {
    // Both records are under the field the recorder would use for slot 0 of its first recorder.
    const field = 'web-1/4242-0-1.0'
    const ghost = { ...activeRecord('ghost', '/ghost'), process_internal_id: '1.0', tags: { [SAMPLED_OUT_TAG]: 'true' } }
    const fresh = { ...activeRecord('fresh', '/fresh'), process_internal_id: '1.0' }
    await redis.client.hset('processors', field, JSON.stringify(ghost))
    session = await startLiveSession(redis.url, (screen) => screen.includes('q quit'))
    const live = session
    await live.waitForScreen((screen) => screen.includes('/ghost'), 15_000, 'the sampled-out request')

    // The sampled-out request ends without a message, and a sampled one takes its field and is published.
    await redis.client.hset('processors', field, JSON.stringify(fresh))
    await waitFor('live to show the published request', async () => {
      await redis.client.publish('task_updates', JSON.stringify(fresh))
      return live.capture().includes('/fresh') ? true : undefined
    })

    const screen = await live.waitForScreen(
      (text) => text.includes('/fresh') && !text.includes('/ghost'),
      3_000,
      'the published request alone',
    )
    expect(screen).not.toContain('/ghost')
  })
})
