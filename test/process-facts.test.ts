import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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

  it('masks secrets of a running app', async () => {
    const args = [
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
    ]
    const nodeArgs = ['--import', 'tsx', '-e', ONE_REQUEST_EXPRESS_SCRIPT, '--', ...args]
    const result = await runNode(nodeArgs, { TEST_REDIS_URL: redis.url }, 15_000)
    expect(result.stdout.trim()).toBe('closed')
    expect(result.code).toBe(0)

    const stored = await readStoredTasks(redis.client)
    expect(stored.pastTasks).toHaveLength(1)
    expect(stored.pastTasks[0]?.command_line).toEqual([
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
    expect(JSON.stringify(stored.pastTasks[0])).not.toMatch(/hunter/)
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
