import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HttpTask } from '../src/index'
import { redactCommandLine } from '../src/recorder/process-facts'
import { REDACTED } from '../src/task/redact'
import { ONE_REQUEST_EXPRESS_SCRIPT, runNode } from './helpers/node-process'
import { readStoredTasks, startRedis, type TestRedis } from './helpers/redis-server'

const NODE = '/usr/bin/node'
const SCRIPT = '/srv/app.js'

describe('redactCommandLine', () => {
  it.each([
    [['--token', 'hunter3'], ['--token', REDACTED]],
    [['--secret', 'hunter7'], ['--secret', REDACTED]],
    [['--db-password', 'hunter1'], ['--db-password', REDACTED]],
    [['--api-key', '-starts-with-dash'], ['--api-key', REDACTED]],
    [['--password=hunter2'], [`--password=${REDACTED}`]],
    [['-Dpassword=hunter2'], [`-Dpassword=${REDACTED}`]],
    [['-token', 'hunter2'], ['-token', REDACTED]],
    [['PASSWORD=hunter8'], [`PASSWORD=${REDACTED}`]],
    [['STRIPE_KEY=sk_live_1'], [`STRIPE_KEY=${REDACTED}`]],
    [['postgres://user:hunter6@db/x'], ['postgres://user:***@db/x']],
    [['--db=postgres://user:hunter6@db/x'], ['--db=postgres://user:***@db/x']],
    [['DATABASE_URL=redis://:hunter5@cache:6379/0'], ['DATABASE_URL=redis://:***@cache:6379/0']],
    [['https://api.test/hook?token=hunter4&x=1'], ['https://api.test/hook?token=***&x=1']],
    [['--pw', 'hunter10'], ['--pw', REDACTED]],
    [['--auth-token:hunter11'], [`--auth-token:${REDACTED}`]],
    [['-password:hunter11'], [`-password:${REDACTED}`]],
    [['/opt/app --token=hunter12'], [`/opt/app --token=${REDACTED}`]],
    [['/opt/app  --password\thunter13 -v'], [`/opt/app  --password\t${REDACTED} -v`]],
    [['PASSWORD=two words'], [`PASSWORD=${REDACTED}`]],
    [['/opt/app --token "two words" -v'], [`/opt/app --token ${REDACTED} -v`]],
    [["/opt/app --token 'two words' -v"], [`/opt/app --token ${REDACTED} -v`]],
    [['/opt/app --token="two words" -v'], [`/opt/app --token=${REDACTED} -v`]],
    [['/opt/app --token two\\ words -v'], [`/opt/app --token ${REDACTED} -v`]],
    [['/opt/app --token "left open'], [`/opt/app --token ${REDACTED}`]],
    [["sh -c '/opt/app --token \"a b\" -v'"], [`sh -c '/opt/app --token ${REDACTED} -v'`]],
    [[`bash -c "ssh h 'app --token nested1'"`], [`bash -c "ssh h 'app --token ${REDACTED}'"`]],
    [["/opt/app '--password=hunter2' \"--token\" tok2"], [`/opt/app '--password=${REDACTED}' "--token" ${REDACTED}`]],
    [['env "API_KEY=sekrit" /opt/app'], [`env "API_KEY=${REDACTED}" /opt/app`]],
    [["'/opt/app --token x'"], [`'/opt/app --token ${REDACTED}'`]],
    [['/opt/app --token "ends with \\'], [`/opt/app --token ${REDACTED}`]],
    [['CONFIG={"url":"redis://u:hunter20@h"}'], ['CONFIG={"url":"redis://u:***@h"}']],
    [['--dsn=postgres://u:hunter21@h/db'], ['--dsn=postgres://u:***@h/db']],
    [['x,redis://u:hunter22@h'], ['x,redis://u:***@h']],
    [['--url=redis://u:hunter@23/x@h:1'], ['--url=redis://u:***@h:1']],
    [['https://h.test/cb#access_token=hunter24&y=1'], ['https://h.test/cb#access_token=***&y=1']],
    [['--redisPassword', 'hunter25'], ['--redisPassword', REDACTED]],
    [['--apiKey', 'hunter26'], ['--apiKey', REDACTED]],
    [['--dbPass', 'hunter27'], ['--dbPass', REDACTED]],
    [['--authToken', 'hunter28'], ['--authToken', REDACTED]],
    [['--dbpass', 'hunter29'], ['--dbpass', REDACTED]],
    [['--rootpw=hunter30'], [`--rootpw=${REDACTED}`]],
    [['dbPass=hunter31'], [`dbPass=${REDACTED}`]],
    [['--sasKey:hunter32'], [`--sasKey:${REDACTED}`]],
    [['redis://u:hunter 33@h'], ['redis://u:***@h']],
    [['/opt/app --url redis://u:hunter 34@h -v'], ['/opt/app --url redis://u:***@h -v']],
    [['CONFIG={"url": "redis://u:hunter35@h"}'], ['CONFIG={"url": "redis://u:***@h"}']],
    [["--url=redis://u:hunter'36@h:1"], ['--url=redis://u:***@h:1']],
    [['--url=redis://u:hunter"37@h:1'], ['--url=redis://u:***@h:1']],
    [['--url=redis://u:hunter<38@h:1'], ['--url=redis://u:***@h:1']],
    [['--url=redis://u:hunter>39@h:1'], ['--url=redis://u:***@h:1']],
    [['--url=redis://u:hunter`40@h:1'], ['--url=redis://u:***@h:1']],
    [['--url=redis://u:1234/5678@h:1'], ['--url=redis://u:***@h:1']],
  ])('masks %j', (args, expected) => {
    expect(redactCommandLine([NODE, SCRIPT, ...args])).toEqual([NODE, SCRIPT, ...expected])
  })

  it.each([
    [['--port', '3000']],
    [['-p', 'hunter-or-port']],
    [['--auth', '--port', '3000']],
    [['--token', '-v']],
    [['--no-auth', 'serve']],
    [['-no-auth', 'serve']],
    [['--token', '--']],
    [['--password-file', '/run/secrets/db']],
    [['PASSWORD_FILE=/run/secrets/db']],
    [['--token=']],
    [['--author', 'ann']],
    [['NODE_ENV=production']],
    [['--monkey', 'banana']],
    [['http://Example.test:80']],
    [['redis://cache:6379/0']],
    [['user@example.test']],
    [['localhost:6379']],
    [['--listen:8080']],
    [['npm run start --port 3000']],
    [['"two words"']],
    [['/opt/app --name "two words"']],
    [["sh -c '/opt/app --port 80 -v'"]],
    [['echo "a\\"b" \'c d\'']],
    [['http://Example.test:80/a/../b']],
    [['CONFIG={"url":"http://Example.test:80/a/../b"}']],
    [['https://h.test:443/@alice']],
    [['--passive', 'on']],
    [['--bypass-cache', 'yes']],
    [['--bypass', 'serve']],
    [['--bypassCache', 'yes']],
    [['--keyspace', 'events']],
    [['--passwordFile', '/run/secrets/db']],
    [['--noAuth', 'serve']],
  ])('keeps %j', (args) => {
    expect(redactCommandLine([NODE, SCRIPT, ...args])).toEqual([NODE, SCRIPT, ...args])
  })

  it('masks each value after a secret option', () => {
    const argv = [NODE, SCRIPT, '--token', 'hunter3', 'serve', '--key', 'hunter9', '--port', '80']
    const expected = [NODE, SCRIPT, '--token', REDACTED, 'serve', '--key', REDACTED, '--port', '80']
    expect(redactCommandLine(argv)).toEqual(expected)
  })
})

describe('recorded command line', () => {
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(async () => {
    await redis.close()
  })

  /** Runs an app that records one request with `args` on its command line, and returns the stored task. */
  async function recordOneRequest(args: readonly string[]): Promise<HttpTask | undefined> {
    await redis.client.flushall()
    const nodeArgs = ['--import', 'tsx', '-e', ONE_REQUEST_EXPRESS_SCRIPT, '--', ...args]
    const result = await runNode(nodeArgs, { TEST_REDIS_URL: redis.url }, 15_000)
    expect(result.stdout.trim()).toBe('closed')
    expect(result.code).toBe(0)

    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks).toHaveLength(1)
    return stored.pastTasks[0]
  }

  it('masks secrets of a running app', async () => {
    const task = await recordOneRequest([
      '--token',
      'hunter3',
      '--secret',
      'hunter7',
      'postgres://user:hunter6@db/x',
      'PASSWORD=hunter8',
      '--pw',
      'hunter10',
      '--auth-token:hunter11',
      '/opt/app --token=hunter12',
      '/opt/app --token "hunter14 hunter15" -v',
      '--port',
      '8080',
    ])

    expect(task?.command_line).toEqual([
      process.execPath,
      '--token',
      REDACTED,
      '--secret',
      REDACTED,
      'postgres://user:***@db/x',
      `PASSWORD=${REDACTED}`,
      '--pw',
      REDACTED,
      `--auth-token:${REDACTED}`,
      `/opt/app --token=${REDACTED}`,
      `/opt/app --token ${REDACTED} -v`,
      '--port',
      '8080',
    ])
    expect(JSON.stringify(task)).not.toMatch(/hunter/)
  })

  it('masks URL secrets and camelCase names', async () => {
    const task = await recordOneRequest([
      'CONFIG={"url":"redis://u:hunter20@h"}',
      '--dsn=postgres://u:hunter21@h/db',
      'x,redis://u:hunter22@h',
      '--url=redis://u:hunter@23/x@h:1',
      'https://h.test/cb#access_token=hunter24&y=1',
      '--redisPassword',
      'hunter25',
      '--dbpass',
      'hunter29',
      'http://Example.test:80/a/../b',
      '--bypass',
      'serve',
    ])

    expect(task?.command_line).toEqual([
      process.execPath,
      'CONFIG={"url":"redis://u:***@h"}',
      '--dsn=postgres://u:***@h/db',
      'x,redis://u:***@h',
      '--url=redis://u:***@h:1',
      'https://h.test/cb#access_token=***&y=1',
      '--redisPassword',
      REDACTED,
      '--dbpass',
      REDACTED,
      'http://Example.test:80/a/../b',
      '--bypass',
      'serve',
    ])
    expect(JSON.stringify(task)).not.toMatch(/hunter/)
  })
})

describe('redactCommandLine on nested quotes', () => {
  it('stops splitting after a few levels', () => {
    const nested = `${"'\"".repeat(5_000)}--token x`
    const startedAt = Date.now()
    const [, , redacted] = redactCommandLine([NODE, SCRIPT, `app ${nested}`])

    expect(Date.now() - startedAt).toBeLessThan(2_000)
    expect(redacted).toBeDefined()
  })
})

describe('redactCommandLine on hostile input', () => {
  // Each argument is about 100 kB. A pattern that backtracks on one of them
  // would take minutes, so the generous limit still catches it.
  it.each([
    [`${'a'.repeat(100_000)}://`],
    [`x=${'a'.repeat(100_000)}`],
    [`--${'a'.repeat(100_000)}`],
    [`https://h/?${'a'.repeat(100_000)}`],
    [`redis://u:${'@/'.repeat(50_000)}`],
    [`${'aB'.repeat(50_000)}=x`],
    [`${'a://u:p '.repeat(12_500)}@`],
    [`sh -c '${"'a://u:p ".repeat(10_000)}'`],
    [`${'a://u:p"'.repeat(12_500)}@`],
  ])('masks %# quickly', (argument) => {
    const startedAt = Date.now()
    const [, , redacted] = redactCommandLine([NODE, SCRIPT, argument])

    expect(Date.now() - startedAt).toBeLessThan(3_000)
    expect(redacted).toBeDefined()
  })
})
