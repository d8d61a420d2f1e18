import { createServer as createTcpServer, type AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { escapeJsonForTerminal, sanitizeText } from '../src/util/sanitize'
import { RedisTracker } from '../src/trackers/redis-tracker'
import { runCli, startCli } from './helpers/cli'
import { completedRecord } from './helpers/records'
import { startRedis, type TestRedis } from './helpers/redis-server'

/** Characters a terminal acts on, which must never reach it from a record. */
const TERMINAL_CONTROLS = /[\x00-\x1f\x7f-\x9f]/

describe('sanitizeText', () => {
  it('leaves printable text alone', () => {
    expect(sanitizeText('Mozilla/5.0 (X11; Linux x86_64) 中文 🚀')).toBe('Mozilla/5.0 (X11; Linux x86_64) 中文 🚀')
  })

  it.each([
    ['NUL', '\x00', '␀'],
    ['backspace', '\x08', '␈'],
    ['tab', '\t', '␉'],
    ['newline', '\n', '␊'],
    ['carriage return', '\r', '␍'],
    ['bell', '\x07', '␇'],
    ['ESC', '\x1b', '␛'],
    ['unit separator', '\x1f', '␟'],
    ['DEL', '\x7f', '␡'],
    ['C1 padding character', '\x80', '\\u0080'],
    ['C1 CSI', '\x9b', '\\u009b'],
    ['C1 OSC', '\x9d', '\\u009d'],
    ['C1 application program command', '\x9f', '\\u009f'],
    ['right-to-left override', '\u202e', '\\u202e'],
    ['first strong isolate', '\u2068', '\\u2068'],
    ['line separator', '\u2028', '\\u2028'],
    ['paragraph separator', '\u2029', '\\u2029'],
    ['soft hyphen', '\xad', '\\u00ad'],
    ['zero-width space', '\u200b', '\\u200b'],
    ['zero-width non-joiner', '\u200c', '\\u200c'],
    ['word joiner', '\u2060', '\\u2060'],
    ['byte order mark', '\ufeff', '\\ufeff'],
    ['Mongolian vowel separator', '\u180e', '\\u180e'],
    ['tag letter A', '\u{e0041}', '\\udb40\\udc41'],
    ['combining grapheme joiner', '\u034f', '\\u034f'],
    ['Hangul choseong filler', '\u115f', '\\u115f'],
    ['Hangul jungseong filler', '\u1160', '\\u1160'],
    ['Hangul filler', '\u3164', '\\u3164'],
    ['halfwidth Hangul filler', '\uffa0', '\\uffa0'],
    ['braille pattern blank', '\u2800', '\\u2800'],
    ['interlinear annotation anchor', '\ufff9', '\\ufff9'],
    ['interlinear annotation terminator', '\ufffb', '\\ufffb'],
    ['Khmer vowel inherent', '\u17b4', '\\u17b4'],
    ['Mongolian free variation selector', '\u180b', '\\u180b'],
    ['inhibit symmetric swapping', '\u206a', '\\u206a'],
    ['variation selector 1', '\ufe00', '\\ufe00'],
    ['shorthand format letter overlap', '\u{1bca0}', '\\ud82f\\udca0'],
    ['musical symbol begin beam', '\u{1d173}', '\\ud834\\udd73'],
    ['variation selector 17', '\u{e0100}', '\\udb40\\udd00'],
    ['lone high surrogate', '\ud83d', '\ufffd'],
    ['lone low surrogate', '\ude80', '\ufffd'],
  ])('replaces %s', (_name, input, placeholder) => {
    expect(sanitizeText(`a${input}b`)).toBe(`a${placeholder}b`)
  })

  it('keeps emoji joined by zero-width joiners', () => {
    expect(sanitizeText('family 👨\u200d👩\u200d👧')).toBe('family 👨\u200d👩\u200d👧')
  })

  it('keeps emoji presentation selectors', () => {
    expect(sanitizeText('\u2764\ufe0f 1\ufe0f\u20e3 \u263a\ufe0e')).toBe('\u2764\ufe0f 1\ufe0f\u20e3 \u263a\ufe0e')
  })

  it('shows a run of zero-width joiners', () => {
    expect(sanitizeText(`a${'\u200d'.repeat(3)}b`)).toBe('a\\u200d\\u200d\\u200db')
  })

  it('keeps eight stacked marks', () => {
    const stacked = `e${'\u0301'.repeat(8)}`
    expect(sanitizeText(stacked)).toBe(stacked)
  })

  it('shows marks past eight in a row', () => {
    const expected = `e${'\u0301'.repeat(8)}\\u0301\\u0301x\u0301`
    expect(sanitizeText(`e${'\u0301'.repeat(10)}x\u0301`)).toBe(expected)
  })

  it('shows text hidden behind zero-width spaces', () => {
    expect(sanitizeText(`${'\u200b'.repeat(3)}END`)).toBe('\\u200b\\u200b\\u200bEND')
  })

  it('neutralises a CSI sequence that would clear the screen', () => {
    expect(sanitizeText('\x1b[2J\x1b[H')).toBe('␛[2J␛[H')
  })

  it('neutralises an OSC title change', () => {
    expect(sanitizeText('\x1b]0;pwned\x07')).toBe('␛]0;pwned␇')
  })

  it('neutralises an OSC 52 clipboard write', () => {
    const output = sanitizeText('\x1b]52;c;ZXZpbA==\x07')
    expect(output).toBe('␛]52;c;ZXZpbA==␇')
    expect(output).not.toMatch(TERMINAL_CONTROLS)
  })

  it('neutralises an OSC terminated by ST', () => {
    expect(sanitizeText('\x1b]2;x\x1b\\')).toBe('␛]2;x␛\\')
  })

  it('neutralises a colour sequence', () => {
    expect(sanitizeText('\x1b[31mred\x1b[0m')).toBe('␛[31mred␛[0m')
  })

  it('keeps surrogate pairs intact', () => {
    expect(sanitizeText('\ud83d\ude80')).toBe('🚀')
  })

  it('keeps U+FFFD from invalid UTF-8', () => {
    expect(sanitizeText(Buffer.from([0x2f, 0xff, 0xfe, 0x61]).toString('utf8'))).toBe('/\ufffd\ufffda')
  })

  it('leaves no terminal control from any code unit below U+00A0', () => {
    let all = ''
    for (let code = 0; code < 0xa0; code++) all += String.fromCharCode(code)
    expect(sanitizeText(all)).not.toMatch(TERMINAL_CONTROLS)
  })

  it('gives the same result on repeated calls', () => {
    expect(sanitizeText('a\x1bb')).toBe('a␛b')
    expect(sanitizeText('a\x1bb')).toBe('a␛b')
  })
})

describe('escapeJsonForTerminal', () => {
  it('escapes DEL and C1 controls and keeps JSON valid', () => {
    const value = { ua: '\x7f\x9b31m\u202eevil', path: '/\x1b[2J' }
    const json = escapeJsonForTerminal(JSON.stringify(value, null, 2))
    // Newlines of the indentation are the only control characters left.
    expect(json).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/)
    expect(JSON.parse(json)).toEqual(value)
  })

  it('escapes invisible characters and keeps JSON valid', () => {
    const value = { ua: 'a\u200bb\ufeffc\u{e0041}d' }
    const json = escapeJsonForTerminal(JSON.stringify(value))
    expect(json).toBe('{"ua":"a\\u200bb\\ufeffc\\udb40\\udc41d"}')
    expect(JSON.parse(json)).toEqual(value)
  })
})

describe('recent with hidden characters', () => {
  const hiddenPath = '/admin\u3164\u115f\u2800\u034f\ufff9note\ufffb'
  const shownPath = '/admin\\u3164\\u115f\\u2800\\u034f\\ufff9note\\ufffb'
  let redis: TestRedis

  beforeAll(async () => {
    redis = await startRedis()
    const writer = new RedisTracker({ url: redis.url })
    writer.recordEnd('hidden', JSON.stringify(completedRecord(hiddenPath, 200, 10)))
    await writer.flush()
    await writer.close()
  })

  afterAll(async () => {
    await redis?.close()
  })

  it('shows them as escapes in the table', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--columns', 'path'])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(shownPath)
    expect(result.stdout).not.toMatch(/[\u3164\u115f\u2800\u034f\ufff9\ufffb]/)
  })

  it('shows them as escapes in JSON', async () => {
    const result = await runCli(['recent', '--tracker-url', redis.url, '--json'])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(shownPath)
    expect(result.stdout).not.toMatch(/[\u3164\u115f\u2800\u034f\ufff9\ufffb]/)
    const [task] = JSON.parse(result.stdout) as Array<{ path: string }>
    expect(task?.path).toBe(hiddenPath)
  })
})

/** An error reply that would retitle and clear the terminal and start a C1 CSI sequence. */
const ESCAPING_ERROR = '-ERR \x1b]0;retitled\x07\x1b[2J\x1b[31mred\xc2\x9b2J\r\n'

/**
 * Starts a loopback server that replies to Redis's connection handshake
 * (INFO, CLIENT, SELECT, PING) as Redis does, and every other command with
 * `ESCAPING_ERROR`. A real Redis never puts such text in an error reply, but
 * a server that is not Redis, or a proxy in front of it, can.
 */
async function startEscapingServer(): Promise<{ url: string; close(): Promise<void> }> {
  const info = 'redis_version:7.0.0\r\nloading:0\r\nrole:master\r\n'
  const server = createTcpServer((socket) => {
    let buffered = ''
    socket.on('error', () => {})
    socket.on('data', (data) => {
      buffered += data.toString('latin1')
      // Each command starts with `*<count>`, and its name is the first bulk string.
      for (let match; (match = /^\*(\d+)\r\n\$\d+\r\n([^\r]*)\r\n/.exec(buffered)); ) {
        const args = Number(match[1])
        let rest = buffered.slice(match[0].length)
        for (let index = 1; index < args; index++) {
          const bulk = /^\$(\d+)\r\n/.exec(rest)
          if (bulk === null || rest.length < bulk[0].length + Number(bulk[1]) + 2) return
          rest = rest.slice(bulk[0].length + Number(bulk[1]) + 2)
        }
        buffered = rest
        const name = (match[2] as string).toUpperCase()
        if (name === 'INFO') socket.write(`$${info.length}\r\n${info}\r\n`)
        else if (name === 'CLIENT' || name === 'SELECT') socket.write('+OK\r\n')
        else if (name === 'PING') socket.write('+PONG\r\n')
        else socket.write(Buffer.from(ESCAPING_ERROR, 'latin1'))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `redis://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

describe('error messages', () => {
  it('show escapes from a server error reply', async () => {
    const server = await startEscapingServer()
    try {
      const result = await runCli(['recent', '--tracker-url', server.url])

      expect(result.code).toBe(1)
      expect(result.stderr).toContain('␛]0;retitled␇␛[2J')
      expect(result.stderr).toContain('\\u009b2J')
      expect(result.stderr.replace(/\n/g, '')).not.toMatch(TERMINAL_CONTROLS)
    } finally {
      await server.close()
    }
  })

  it('show escapes in the messages of tail', async () => {
    const server = await startEscapingServer()
    const tail = startCli(['tail', '--tracker-url', server.url])
    try {
      await tail.waitFor((_stdout, stderr) => stderr.includes('retitled'), 'the error of the server')
    } finally {
      await tail.stop()
      await server.close()
    }

    expect(tail.stderr()).toContain('␛]0;retitled␇␛[2J')
    expect(tail.stderr().replace(/\n/g, '')).not.toMatch(TERMINAL_CONTROLS)
  })

  it('show escapes from a command-line value', async () => {
    const result = await runCli(['recent', '--limit', '5\x1b[2J'])

    expect(result.code).toBe(2)
    expect(result.stderr).toContain("'5␛[2J'")
    expect(result.stderr.replace(/\n/g, '')).not.toMatch(TERMINAL_CONTROLS)
  })
})
