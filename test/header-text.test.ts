import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryTracker, withTop } from '../src/index'
import { decodeHeaderValue } from '../src/task/capture'
import { waitFor } from './helpers/http'

const servers: Server[] = []

afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve))
})

/** Sends raw bytes as one HTTP request and resolves with the response text. */
function sendRaw(port: number, request: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(request))
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')))
    socket.on('error', reject)
  })
}

describe('header values sent as UTF-8', () => {
  it('are stored as the text the client sent', async () => {
    const tracker = new MemoryTracker()
    const listener = withTop(
      (_req, res) => {
        res.setHeader('X-Reply', Buffer.from('grüße', 'utf8').toString('latin1'))
        res.end('ok')
      },
      { tracker, handleSignals: false },
    )
    const server = createServer(listener)
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo

    const head = 'GET /names HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: agent-中文-ü\r\nX-Name: Ünïcödé 😀\r\nConnection: close\r\n\r\n'
    const response = await sendRaw(port, Buffer.from(head, 'utf8'))
    expect(response.startsWith('HTTP/1.1 200')).toBe(true)

    const task = await waitFor('the completed task', async () => (await tracker.read()).completed[0])
    const requestHeaders = Object.fromEntries(task.request_headers ?? [])
    const responseHeaders = Object.fromEntries(task.response_headers ?? [])
    expect(requestHeaders['USER-AGENT']).toBe('agent-中文-ü')
    expect(requestHeaders['X-NAME']).toBe('Ünïcödé 😀')
    expect(responseHeaders['X-Reply']).toBe('grüße')
    await listener.recorder.close()
  })
})

describe('decodeHeaderValue', () => {
  it.each([
    ['ASCII', 'plain text', 'plain text'],
    ['UTF-8 bytes read as latin1', Buffer.from('café', 'utf8').toString('latin1'), 'café'],
    ['a latin1 byte that is not UTF-8', 'caf\u00e9', 'caf\u00e9'],
    ['text above U+00FF', 'already 中文', 'already 中文'],
  ])('keeps or decodes %s', (_case, value, expected) => {
    expect(decodeHeaderValue(value)).toBe(expected)
  })
})
