/**
 * `web-top-cli recent` on a terminal too narrow for its columns: the table
 * leaves some out, and a note on standard error names them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI_PATH, CLI_VARIABLES } from './helpers/cli'
import { hasTmux, quoteForShell, SHELL_PROMPT, TmuxSession } from './helpers/pty'
import { startRedis, type TestRedis } from './helpers/redis-server'

const RECORD = {
  task_id: 1,
  method: 'GET',
  path: '/a/long/path/of/the/request',
  status_code: 200,
  request_headers: [['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) a long user agent']],
  started_at: '2026-12-05T13:00:00Z',
  ended_at: '2026-12-05T13:00:01Z',
}

let redis: TestRedis
let directory: string

beforeAll(async () => {
  redis = await startRedis()
  await redis.client.lpush('past_tasks', JSON.stringify(RECORD))
  for (const pid of [10514, 10515]) {
    await redis.client.lpush('procs:past_tasks', JSON.stringify({ ...RECORD, task_id: pid, host_name: 'host-alpha', process_id: pid }))
  }
  directory = mkdtempSync(join(tmpdir(), 'web-top-width-'))
})

afterAll(async () => {
  await redis?.close()
  rmSync(directory, { recursive: true, force: true })
})

/**
 * Runs `recent` with `args` in a terminal `width` columns wide and returns
 * its screen and standard error. `setup` is a shell command run before it.
 */
async function runOnTerminal(width: number, args: string, setup = ''): Promise<{ screen: string; stderr: string }> {
  const stderrPath = join(directory, `stderr-${width}-${setup.length}.txt`)
  const session = TmuxSession.start({ width, height: 10, unset: CLI_VARIABLES })
  try {
    await session.waitForScreen((text) => text.includes(SHELL_PROMPT.trimEnd()), 15_000, 'the shell prompt')
    const command = `node ${quoteForShell(CLI_PATH)} recent --tracker-url ${redis.url} ${args}`
    session.type(`${setup}${command} 2>${quoteForShell(stderrPath)}; echo done-$?`, true)
    const screen = await session.waitForScreen((text) => text.includes('done-0'), 10_000, 'the end of recent')
    return { screen, stderr: readFileSync(stderrPath, 'utf8') }
  } finally {
    session.kill()
  }
}

/** Returns the table's header line on the screen. */
function headerOf(screen: string): string | undefined {
  return screen
    .split('\n')
    .find((line) => line.startsWith('Method'))
    ?.trimEnd()
}

describe.skipIf(!hasTmux())('recent on a narrow terminal', () => {
  it('names the columns it leaves out', async () => {
    const { screen, stderr } = await runOnTerminal(50, "--columns 'Method,Path,Resp,Length,User agent'")

    expect(headerOf(screen)).toMatch(/^Method +Path +Resp +Length$/)
    expect(stderr).toBe(
      'web-top-cli: the terminal is 50 columns wide, so the table leaves out User agent; ' +
        'widen the terminal or name fewer columns in --columns\n',
    )
  })

  it('prints no note when every column fits', async () => {
    const { screen, stderr } = await runOnTerminal(200, "--columns 'Method,Path,Resp,Length,User agent'")

    expect(headerOf(screen)).toMatch(/^Method +Path +Resp +Length +User agent$/)
    expect(stderr).toBe('')
  })

  // `docker exec -t` and serial consoles may report a size of 0x0 at first.
  it('keeps every column when the terminal reports no width', async () => {
    const { screen, stderr } = await runOnTerminal(200, "--columns 'Method,Path,Resp,Length,User agent'", 'stty cols 0 rows 0; ')

    expect(headerOf(screen)).toMatch(/^Method +Path +Resp +Length +User agent$/)
    expect(screen).toContain('/a/long/path/of/the/request')
    expect(stderr).toBe('')
  })

  it('cuts Process from the start, keeping the pid', async () => {
    const { screen, stderr } = await runOnTerminal(36, "--prefix procs: --columns 'Host,Process,Method,Resp'")
    const rows = screen.split('\n').filter((line) => line.startsWith('host-'))

    expect(rows).toHaveLength(2)
    expect(rows.some((row) => row.includes('…t-alpha/10514 '))).toBe(true)
    expect(rows.some((row) => row.includes('…t-alpha/10515 '))).toBe(true)
    expect(stderr).toBe('')
  })
})
