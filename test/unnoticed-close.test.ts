/**
 * Requests whose connection closes without a `close` event of their
 * response: the app detached the socket and wrote its response on it, or removed the
 * response's `close` listeners. The recorder's sweep ends them once their
 * connection has closed, instead of leaving them active for good.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryTracker } from '../src/index'
import { startRecordedExpress, type RecordedExpressApp } from './helpers/express-app'
import { waitFor } from './helpers/http'
import { captureLogger } from './helpers/logger'
import { formatRequest, openConnection } from './helpers/raw-http'

let app: RecordedExpressApp | undefined

afterEach(async () => {
  await app?.middleware.close()
  await app?.closeServer()
  app = undefined
})

function startApp(tracker: MemoryTracker): Promise<RecordedExpressApp> {
  return startRecordedExpress({ tracker, logger: captureLogger() }, (express) => {
    express.get('/tunnel', (req, res) => {
      res.detachSocket(req.socket)
      req.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
    })
    express.get('/deaf', (_req, res) => {
      res.removeAllListeners('close')
    })
  })
}

/** Sends `GET <path>` on a raw connection, leaves after `leaveAfterMs` unless the server closes first, and returns what it sent. */
async function sendRaw(url: string, path: string, leaveAfterMs: number): Promise<string> {
  const connection = await openConnection(Number(new URL(url).port))
  let reply = ''
  connection.socket.on('data', (data: Buffer) => (reply += data.toString()))
  connection.write(formatRequest('GET', path))
  const timer = setTimeout(() => connection.destroy(), leaveAfterMs)
  await connection.closed
  clearTimeout(timer)
  return reply
}

describe('request whose response never emits close', () => {
  it('ends after the app detached its socket', async () => {
    const tracker = new MemoryTracker()
    app = await startApp(tracker)

    const reply = await sendRaw(app.url, '/tunnel', 5_000)
    expect(reply).toMatch(/^HTTP\/1.1 200 OK/)
    await waitFor('the end of the task', async () => ((await tracker.read()).completed.length === 1 ? true : undefined), 15_000)

    const snapshot = await tracker.read()
    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed[0]?.path).toBe('/tunnel')
    expect(snapshot.completed[0]?.recorded_successfully).toBe(false)
    expect(snapshot.completed[0]?.tags?.['web_top.outcome']).toBe('aborted')
  })

  it('ends after the app removed the close listeners', async () => {
    const tracker = new MemoryTracker()
    app = await startApp(tracker)

    const reply = await sendRaw(app.url, '/deaf', 300)
    expect(reply).toBe('')
    await waitFor('the end of the task', async () => ((await tracker.read()).completed.length === 1 ? true : undefined), 15_000)

    const snapshot = await tracker.read()
    expect(snapshot.active.size).toBe(0)
    expect(snapshot.completed[0]?.path).toBe('/deaf')
    expect(snapshot.completed[0]?.tags?.['web_top.outcome']).toBe('aborted')
    expect(snapshot.completed[0]?.status_code ?? null).toBeNull()
  })
})
