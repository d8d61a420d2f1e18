import { afterEach, describe, expect, it } from 'vitest'
import { MemoryTracker } from '../src/index'
import { FRAMEWORKS, sendRequest, startApp, waitFor, type TestApp } from './helpers/http'
import { formatRequest, openConnection } from './helpers/raw-http'

describe.each(FRAMEWORKS)('%s ignore patterns', (framework) => {
  let app: TestApp | undefined

  afterEach(async () => {
    await app?.close()
    app = undefined
  })

  it.each([/^\/health$/g, /^\/health$/y, /^\/health$/gy])('skips every request matching %s', async (pattern) => {
    const tracker = new MemoryTracker()
    app = await startApp(framework, { tracker, ignore: [pattern] })

    for (let i = 0; i < 4; i++) await sendRequest(`${app.url}/health`)
    await sendRequest(`${app.url}/users/1`)
    const completed = await waitFor('the completed /users/1 request', async () => {
      const snapshot = await tracker.read()
      return snapshot.completed.length > 0 ? snapshot.completed : undefined
    })

    expect(completed.map((task) => task.path)).toEqual(['/users/1'])
    expect(pattern.lastIndex).toBe(0)
  })

  it('matches the path of absolute-form targets and targets with a fragment', async () => {
    const tracker = new MemoryTracker()
    app = await startApp(framework, { tracker, ignore: ['/health'] })
    const connection = await openConnection(app.port)
    try {
      connection.write(formatRequest('GET', 'http://other.example:8080/health'))
      connection.write(formatRequest('GET', '/health#section'))
      connection.write(formatRequest('GET', 'http://other.example:8080/users/1?q=1'))
      const responses = await connection.readResponses(3)
      expect(responses.map((response) => response.status)).toEqual([200, 200, 200])
    } finally {
      connection.destroy()
    }

    const completed = await waitFor('the completed /users/1 request', async () => {
      const snapshot = await tracker.read()
      return snapshot.completed.length > 0 ? snapshot.completed : undefined
    })
    expect(completed.map((task) => task.path)).toEqual(['/users/1'])
  })
})
