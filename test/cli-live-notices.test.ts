/**
 * The status line of `web-top-cli live` against a private redis-server:
 * piped, the first frame names a key prefix that no app records under, and
 * every frame names a SUBSCRIBE that Redis rejected for the user. In a real
 * pseudo-terminal (tmux on a private socket) with Redis frozen (SIGSTOP),
 * the notices take one row, cut with `…`, at 120 columns and at 10x3.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startCli, startLiveSession, type RunningCli } from './helpers/cli'
import { hasTmux, type TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'
import { textWidth } from '../src/cli/text-width'

const TMUX_AVAILABLE = hasTmux()
if (!TMUX_AVAILABLE) console.warn('cli-live-notices: the terminal tests are skipped because tmux is not on PATH')

/** The reader's commands that README.md lists under "Redis users (ACL)", without +subscribe. */
const READER_COMMANDS_WITHOUT_SUBSCRIBE =
  '+multi +exec +hgetall +lrange +llen +get +evalsha +eval +hkeys +hstrlen +hmget +exists +smembers +mget +unsubscribe +scan +info +select +ping +quit'

let redis: TestRedis

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  redis?.thaw()
  await redis?.close()
})

/** Returns the first frame of piped `live` output, whose frames are separated by a blank line. */
function firstFrame(stdout: string): string {
  return stdout.split('\n\n')[0] ?? ''
}

describe('piped live notices', () => {
  let cli: RunningCli | undefined

  afterEach(async () => {
    await cli?.stop()
    cli = undefined
  })

  it('names an unused prefix in the first frame', async () => {
    // The first resync comes after 30 s, so the note must come from the first read.
    cli = startCli(['live', '--tracker-url', redis.url, '--prefix', 'typo:', '--refresh-rate', '30'])
    await cli.waitFor((stdout) => stdout.includes('no app has recorded'), 'the unused prefix note')

    const frame = firstFrame(cli.stdout())
    expect(frame).toContain('Completed HTTP responses (0)')
    expect(frame).toContain('no app has recorded under the key prefix "typo:"')
  })

  it('says why a user without SUBSCRIBE polls', async () => {
    await redis.client.acl('SETUSER', 'no-subscribe', 'reset', 'on', '>secret-pw', '~*', '&*', ...READER_COMMANDS_WITHOUT_SUBSCRIBE.split(' '))
    const url = `redis://no-subscribe:secret-pw@127.0.0.1:${redis.port}`
    cli = startCli(['live', '--tracker-url', url, '--refresh-rate', '1'])
    await cli.waitFor((stdout) => stdout.includes('Completed HTTP responses'), 'the first frame')

    const frame = firstFrame(cli.stdout())
    expect(frame).toContain('figures from past_tasks polling every 1.00s (no update stream)')
    expect(frame).toContain('No update stream: Redis rejected SUBSCRIBE for this user: NOPERM')
    expect(frame.match(/rejected SUBSCRIBE/g)).toHaveLength(1)
    expect(frame).not.toContain('secret-pw')
  })
})

describe.skipIf(!TMUX_AVAILABLE)('live notices with Redis frozen (needs tmux)', () => {
  let session: TmuxSession | undefined

  afterEach(() => {
    redis.thaw()
    session?.kill()
    session = undefined
  })

  it('keeps the notices on one row', { timeout: 60_000 }, async () => {
    session = await startLiveSession(redis.url, (text) => text.includes('q quit'))
    redis.freeze()
    // The PING of the stream goes unanswered for 3 s, and the read times out after 5 s.
    let screen = await session.waitForScreen(
      (text) => text.includes('Reads failing') && text.includes('DISCONNECTED'),
      20_000,
      'the failing reads notice',
    )
    let lines = screen.trimEnd().split('\n')
    const statusIndex = lines.findIndex((line) => line.startsWith('Reads failing'))
    const status = lines[statusIndex] ?? ''
    // The read error and the lost stream together are wider than 120 columns.
    expect(status).toMatch(/^Reads failing for \S+, showing the last data: .*Update stream lost: .*…$/)
    expect(textWidth(status)).toBe(120)
    expect(lines[statusIndex + 1]).toMatch(/^q quit/)
    expect(statusIndex + 2, screen).toBe(lines.length)

    session.resize(10, 3)
    screen = await session.waitForScreen(
      (text) => /^Reads fai…$/m.test(text) && /^q quit/m.test(text),
      15_000,
      'the status line drawn for 10x3',
    )
    lines = screen.trimEnd().split('\n')
    expect(lines).toHaveLength(3)
    expect(lines[1]).toBe('Reads fai…')
    expect(lines[2]).toBe('q quit  p…')
    for (const line of lines) expect(textWidth(line)).toBeLessThanOrEqual(10)
    session.sendKeys('q')
  })
})
