/**
 * Usage errors of `web-top-cli`: each is one line on standard error, starts
 * with `web-top-cli: `, exits 2, and ends with advice that fits the option
 * at fault.
 */
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI_PATH, cliEnvironment, runCli } from './helpers/cli'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** Checks a one-line usage error and returns its line without the trailing newline. */
function expectOneLineUsageError(result: { code: number | null; stdout: string; stderr: string }): string {
  expect(result.code).toBe(2)
  expect(result.stdout).toBe('')
  expect(result.stderr.endsWith('\n')).toBe(true)
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1)
  expect(result.stderr).toMatch(/^web-top-cli: /)
  return result.stderr.trimEnd()
}

describe('Commander errors', () => {
  it('puts the suggestion for an unknown option on the same line', async () => {
    const line = expectOneLineUsageError(await runCli(['recent', '--nope']))
    expect(line).toBe("web-top-cli: unknown option '--nope' (Did you mean --mode?)")
  })

  it('reports an unknown option without a suggestion', async () => {
    const line = expectOneLineUsageError(await runCli(['check', '--zzzzzzzz']))
    expect(line).toBe("web-top-cli: unknown option '--zzzzzzzz'")
  })

  it('puts the suggestion for an unknown command on the same line', async () => {
    const line = expectOneLineUsageError(await runCli(['recnt']))
    expect(line).toBe("web-top-cli: unknown command 'recnt' (Did you mean recent?)")
  })

  it('reports an invalid value on one line', async () => {
    const line = expectOneLineUsageError(await runCli(['recent', '--limit', '0']))
    expect(line).toContain("option '--limit <n>' argument '0' is invalid")
    expect(line).toContain('Expected a whole number from 1 to 9007199254740991.')
  })

  it('reports a missing value on one line', async () => {
    const line = expectOneLineUsageError(await runCli(['check', '--max-error-rate']))
    expect(line).toBe("web-top-cli: option '--max-error-rate <share>' argument missing")
  })
})

describe('help command', () => {
  it('reports an unknown command on one line', async () => {
    const line = expectOneLineUsageError(await runCli(['help', 'bogus']))
    expect(line).toBe(
      "web-top-cli: unknown command 'bogus'; the commands are recent, live, tail, check, clear, prune, prefixes, version, help",
    )
  })

  it('prints the help of a known command', async () => {
    const result = await runCli(['help', 'recent'])

    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    expect(result.stdout).toMatch(/^Usage: web-top-cli recent \[options\]\n/)
  })

  it('prints the program help without a command', async () => {
    const result = await runCli(['help'])

    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^Usage: web-top-cli \[options\] \[command\]\n/)
    expect(result.stdout).toContain('help [command]')
  })

  it('prints the program help on stderr for no command', async () => {
    const result = await runCli([])

    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(/^Usage: web-top-cli \[options\] \[command\]\n/)
  })
})

describe('program help', () => {
  it.each([[[]], [['recent']], [['live']], [['tail']], [['check']], [['prune']], [['clear']], [['prefixes']]])(
    'fits 80 columns for %j',
    async (command) => {
      // Commander wraps the option lines to the terminal, 80 columns in a pipe; the text after them has its own breaks.
      const result = await runCli([...command, '--help'])

      expect(result.code).toBe(0)
      const longLines = result.stdout.split('\n').filter((line) => line.length > 80)
      expect(longLines).toEqual([])
    },
  )

  it.each([[[]], [['recent']], [['live']], [['tail']], [['check']], [['prune']], [['clear']], [['prefixes']]])(
    'breaks no paragraph early for %j',
    async (command) => {
      const result = await runCli([...command, '--help'])

      // A line of prose followed by more of its paragraph, with room left for the next word.
      const lines = result.stdout.split('\n')
      const isProse = (line: string | undefined) => line !== undefined && line !== '' && !line.startsWith(' ')
      const earlyBreaks = lines.filter((line, index) => {
        const next = lines[index + 1]
        if (!isProse(line) || !isProse(next)) return false
        const nextWord = (next as string).split(' ')[0] as string
        return line.length + 1 + nextWord.length <= 60
      })
      expect(result.code).toBe(0)
      expect(earlyBreaks).toEqual([])
    },
  )

  it('lists the exit code of a declined clear', async () => {
    const result = await runCli(['--help'])

    expect(result.code).toBe(0)
    expect(result.stdout.replace(/\s+/g, ' ')).toContain("clear's question is answered no), 2 for")
  })
})

describe('tracker URL hints', () => {
  it('lists only the schemes the CLI reads', async () => {
    const line = expectOneLineUsageError(await runCli(['recent', '--tracker-url', 'foo://x']))
    expect(line).toContain('the scheme "foo:" is not supported')
    for (const scheme of ['redis://', 'rediss://', 'redis+cluster://', 'redis+sentinel://', 'http(s)://']) {
      expect(line).toContain(scheme)
    }
    expect(line).not.toContain('memory://')
  })

  it('still rejects memory:// with exit code 2', async () => {
    const line = expectOneLineUsageError(await runCli(['recent', '--tracker-url', 'memory://']))
    expect(line).toContain("memory:// is the tracker inside one app's process")
  })

  it.each([
    ['a prefix without a hash tag', ['--prefix', 'shop:']],
    ['no prefix', []],
  ])('points a cluster URL with %s at --prefix', async (_case, prefixArgs) => {
    const result = await runCli(['recent', '--tracker-url', 'redis+cluster://127.0.0.1:1', ...prefixArgs])
    const line = expectOneLineUsageError(result)
    expect(line).toContain('The `--prefix` option must be a prefix with a hash tag')
    expect(line).toMatch(/; set --prefix or TOP_TRACKER_PREFIX to the hash-tagged prefix/)
    expect(line).not.toContain('--tracker-url')
  })

  it('points an invalid cluster URL at --tracker-url', async () => {
    const result = await runCli(['recent', '--tracker-url', 'redis+cluster://127.0.0.1:notaport', '--prefix', '{shop}:'])
    const line = expectOneLineUsageError(result)
    expect(line).toContain('is not a valid host:port')
    expect(line).toContain('set the URL with --tracker-url or TOP_TRACKER_URL')
  })
})

describe('option values', () => {
  // A value that the parser took would make the command read this server.
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(async () => {
    await redis?.close()
  })

  it.each([
    ['recent', '--path', '', "option '--path <text>' argument '' is invalid. Expected text to look for; leave out --path"],
    ['tail', '--host', '', "option '--host <text>' argument '' is invalid. Expected text to look for; leave out --host"],
    ['recent', '--method', '', "option '--method <list>' argument '' is invalid. Expected methods such as GET"],
    ['tail', '--method', ' , ', "option '--method <list>' argument ' , ' is invalid. Expected methods such as GET"],
    ['recent', '--method', 'GET,G E T', 'Invalid method "G E T": a method is an HTTP token, such as GET'],
    ['recent', '--columns', 'IP,Path,ip', 'The column "IP" is listed more than once; list each column once.'],
    ['live', '--completed-columns', 'User agent,user-agent', 'The column "User agent" is listed more than once'],
  ])('%s rejects %s %j', async (command, option, value, message) => {
    const line = expectOneLineUsageError(await runCli([command, option, value, '--tracker-url', redis.url]))
    expect(line).toContain(message)
  })

  const wholeNumber = (min: number) => `Expected a whole number from ${min} to 9007199254740991.`
  const duration = 'Expected a duration such as 250 (milliseconds), 250ms, 1.5s or 2m, up to 365 days (525600m).'
  const seconds = (min: number) =>
    `Expected a number of seconds from ${min} to 31536000 (365 days), or a duration such as 90s, 5m or 1h.`

  it.each([
    ['recent', '--limit', '99999999999999999999', wholeNumber(1)],
    ['recent', '--limit', '9007199254740992', wholeNumber(1)],
    ['check', '--max-stalled', '1e20', wholeNumber(0)],
    ['check', '--max-stalled', '9007199254740992', wholeNumber(0)],
    ['check', '--max-p99', '1e300', duration],
    ['check', '--max-p99', '31536000001', duration],
    ['recent', '--min-duration', '525601m', duration],
    ['tail', '--min-duration', '31536001s', duration],
    ['check', '--window', '1e300', seconds(1)],
    ['live', '--window', '31536001', seconds(1)],
    ['check', '--stall-after', '1e300', seconds(0)],
    ['live', '--stall-after', '31536001', seconds(0)],
    ['live', '--slow-after', '1e300', seconds(0)],
    ['check', '--window', '366d', seconds(1)],
    ['check', '--window', '0x10', seconds(1)],
  ])('%s rejects %s %s', async (command, option, value, message) => {
    const line = expectOneLineUsageError(await runCli([command, option, value, '--tracker-url', redis.url]))
    expect(line).toContain(`argument '${value}' is invalid. ${message}`)
  })

  it.each([
    ['recent', '--limit', '9007199254740991'],
    ['check', '--max-stalled', '9007199254740991'],
    ['check', '--max-p99', '525600m'],
    ['check', '--window', '31536000'],
    ['check', '--stall-after', '31536000'],
    ['check', '--window', '1h'],
    ['check', '--stall-after', '2m30s'],
  ])('%s takes %s %s', async (command, option, value) => {
    const result = await runCli([command, option, value, '--tracker-url', redis.url])
    expect(result.stderr).not.toContain('is invalid')
    expect(result.code).not.toBe(2)
  })

  const API_KEY = 'k'.repeat(24)

  it.each([
    [['clear', '--yes', '--api-key', API_KEY], 'clear works on Redis only'],
    [['prune', '--api-key', API_KEY], 'prune works on Redis only'],
    [['prefixes', '--api-key', API_KEY], 'prefixes works on Redis only'],
    [['--api-key', API_KEY, 'prune'], 'prune works on Redis only'],
    [['recent', '--api-key', API_KEY], 'the tracker URL is not http(s)://'],
    [['check', '--api-key', API_KEY], 'the tracker URL is not http(s)://'],
  ])('rejects --api-key on Redis: %j', async (args, target) => {
    const line = expectOneLineUsageError(await runCli([...args, '--tracker-url', redis.url]))
    expect(line).toBe(`web-top-cli: --api-key is the key of an http(s):// tracker, and ${target}; leave out --api-key`)
  })

  it('names only the key when an http:// tracker has none', async () => {
    const url = `http://127.0.0.1:${redis.port}/web-top`
    const line = expectOneLineUsageError(await runCli(['recent', '--tracker-url', url]))
    expect(line).toBe(
      `web-top-cli: An API key is needed to read ${url}; ` +
        'pass the key the app was started with in --api-key or TOP_WEB_API_KEY',
    )
  })

  it.each([['recent'], ['check'], ['tail'], ['live']])('%s rejects --prefix on http://', async (command) => {
    const url = `http://127.0.0.1:${redis.port}/web-top`
    const result = await runCli([command, '--tracker-url', url, '--api-key', API_KEY, '--prefix', 'shop:'])
    const line = expectOneLineUsageError(result)
    expect(line).toBe(
      'web-top-cli: --prefix does not apply to an http(s):// tracker: the app serves the tasks of its own ' +
        'key prefix (its keyPrefix option or TOP_TRACKER_PREFIX); leave out --prefix',
    )
  })

  const PREFIX_RULE = 'a key prefix without control characters or line separators, such as a newline, tab, escape or U+2028'

  it.each([
    [['tail', '--prefix', 'bad\nprefix'], '"bad\\nprefix"'],
    [['--prefix', 'a\tb', 'recent'], '"a\\tb"'],
    [['check', '--prefix', 'shop:\u009b2J'], '"shop:\\u009b2J"'],
    [['recent', '--prefix', 'shop\u2028eu:'], '"shop\\u2028eu:"'],
    [['recent', '--prefix', 'shop\u2029eu:'], '"shop\\u2029eu:"'],
  ])('rejects a control character in --prefix: %j', async (args, received) => {
    const line = expectOneLineUsageError(await runCli([...args, '--tracker-url', redis.url]))
    expect(line).toBe(
      `web-top-cli: The --prefix option must be ${PREFIX_RULE} (received ${received}); ` +
        'pass the prefix that the apps record with',
    )
  })

  it.each([['tail'], ['live'], ['prune']])('%s rejects a control character in TOP_TRACKER_PREFIX', async (command) => {
    const result = await runCli([command, '--tracker-url', redis.url], { env: { TOP_TRACKER_PREFIX: 'bad\nprefix' } })
    const line = expectOneLineUsageError(result)
    expect(line).toBe(
      `web-top-cli: The TOP_TRACKER_PREFIX environment variable must be ${PREFIX_RULE} (received "bad\\nprefix"); ` +
        'set it to the prefix that the apps record with, or pass --prefix',
    )
  })

  it.each([
    [['prefixes']],
    [['recent', '--all-prefixes']],
    [['recent', '--prefix', 'shop:']],
  ])('%j ignores a control character in TOP_TRACKER_PREFIX', async (args) => {
    const result = await runCli([...args, '--tracker-url', redis.url], { env: { TOP_TRACKER_PREFIX: 'bad\nprefix' } })
    expect(result.stderr).not.toContain('TOP_TRACKER_PREFIX')
    expect(result.code).toBe(0)
  })

  it('ignores TOP_WEB_API_KEY on a Redis-only command', async () => {
    const result = await runCli(['prune', '--tracker-url', redis.url], { env: { TOP_WEB_API_KEY: API_KEY } })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
  })
})

describe('a closed output pipe', () => {
  it('ends help output quietly with exit code 0', async () => {
    // As `web-top-cli check --help | head -1` when head exits first: the
    // read end of standard output is closed before the CLI writes.
    const child = spawn(process.execPath, [CLI_PATH, 'check', '--help'], {
      env: cliEnvironment(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout.destroy()
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const code = await new Promise<number | null>((resolveExit) => child.once('close', resolveExit))

    expect(stderr).toBe('')
    expect(code).toBe(0)
  })
})
