/**
 * `web-top-cli live` in a real pseudo-terminal (tmux) on a private Redis
 * Cluster whose master and replica for the prefix's slot are killed while
 * it runs. The status line names the node and the slot, as the one-shot
 * commands do, instead of the cluster client's error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTrackerFromUrl } from '../src/trackers/from-url'
import { CLI_PATH, CLI_VARIABLES } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedisCluster, type TestCluster } from './helpers/redis-cluster'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-cluster-down: skipped because tmux is not on PATH')

const PREFIX = '{shop}:'

let cluster: TestCluster
let session: TmuxSession | undefined

beforeAll(async () => {
  if (!TMUX_AVAILABLE) return
  cluster = await startRedisCluster()
  const writer = createTrackerFromUrl(cluster.url, { keyPrefix: PREFIX })
  const nowIso = new Date().toISOString()
  const record = { task_id: 'done', method: 'GET', path: '/before-outage', started_at: nowIso, ended_at: nowIso }
  writer.recordEnd('p-done', JSON.stringify(record))
  await writer.flush()
  await writer.close()
}, 60_000)

afterAll(async () => {
  session?.kill()
  await cluster?.close()
})

describe.skipIf(!TMUX_AVAILABLE)('live on a cluster that loses a slot (needs tmux)', () => {
  it('names the node and the slot in the status line', async () => {
    // Wide enough for the whole notice on one line.
    session = TmuxSession.start({
      width: 400,
      height: 30,
      env: { TOP_TRACKER_URL: cluster.url, TOP_TRACKER_PREFIX: PREFIX },
      unset: CLI_VARIABLES,
    })
    await session.waitForScreen((text) => text.includes(SHELL_PROMPT.trimEnd()), 15_000, 'the shell prompt')
    session.type(`node ${quoteForShell(CLI_PATH)} live --refresh-rate 1`, true)
    await session.waitForScreen((text) => text.includes('/before-outage'), 15_000, 'the live view')

    const slot = await cluster.keySlot(`${PREFIX}processors`)
    const masterPort = await cluster.masterPortOf(slot)
    const replicaPort = await cluster.replicaPortOf(masterPort)
    await cluster.kill(masterPort)
    await cluster.kill(replicaPort)
    await cluster.waitForNodeFlags([masterPort, replicaPort], 'fail')

    const expected =
      `the cluster node 127.0.0.1:${masterPort} that serves slot ${slot} (the keys of --prefix "${PREFIX}") ` +
      `is not reachable, and its replica 127.0.0.1:${replicaPort} is not reachable either`
    const screen = await session.waitForScreen((text) => text.includes(expected), 30_000, 'the diagnosis')
    const notice = screen.split('\n').find((line) => line.includes(expected)) ?? ''

    expect(notice).toMatch(/^Reads failing for \S+, showing the last data: the cluster node /)
    expect(notice).toMatch(/Check the cluster with redis-cli -c -p \d+ cluster info/)
    expect(screen).toContain('/before-outage')
  }, 120_000)
})
