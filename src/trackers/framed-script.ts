/**
 * Script calls whose request web-top frames itself instead of ioredis. A
 * batch call carries hundreds of arguments of about a kilobyte each, and
 * ioredis measures each one in UTF-8, joins them and encodes the result
 * again when it writes it. Here each argument is written once into one
 * buffer, which takes a fraction of that time (bench/README.md).
 */
import { createHash } from 'node:crypto'
import { Command } from 'ioredis'
import type { RedisClient } from './redis-tracker'

/** A Lua script and its SHA1 digest, as EVALSHA names it. */
export interface LuaScript {
  readonly lua: string
  readonly sha: string
}

export function createLuaScript(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

/**
 * The caller's hold on a script call. Once `abandoned` is set, the caller
 * no longer waits for the call's reply: it sends the batch again in a call
 * of its own, or has counted its records as dropped. So the call must not
 * run if the client writes it later.
 */
export interface ScriptCallGuard {
  abandoned: boolean
}

/**
 * The request an abandoned call writes instead of its own: PING, which
 * changes nothing and gets one reply, as the call would.
 */
const ABANDONED_REQUEST = Buffer.from('*1\r\n$4\r\nPING\r\n')

/**
 * One EVALSHA or EVAL call with a request built in advance. The arguments
 * given to ioredis are only the script, the key count and the keys, so a
 * Cluster still routes the call by its keys.
 */
class FramedScriptCommand extends Command {
  readonly #request: Buffer
  readonly #guard: ScriptCallGuard | undefined

  constructor(
    name: 'evalsha' | 'eval',
    script: string,
    keys: readonly string[],
    request: Buffer,
    guard: ScriptCallGuard | undefined,
  ) {
    super(name, [script, String(keys.length), ...keys], { replyEncoding: 'utf8' })
    this.#request = request
    this.#guard = guard
  }

  /**
   * Returns the request, each time ioredis writes the call. ioredis writes
   * a call again after a reconnection when its client has
   * `autoResendUnfulfilledCommands` on, its default, and writes a call
   * that waited in its offline queue then too. Once abandoned, the call is
   * PING: the caller's own call carries the batch, and this one, written
   * before it, could run a later batch ahead of an earlier one.
   */
  override toWritable(): Buffer {
    return this.#guard?.abandoned === true ? ABANDONED_REQUEST : this.#request
  }

  /**
   * Takes the reply settings of the client that sends the command. An
   * ioredis 6 client calls this on every command, and its `Command` sets
   * these two fields, which ioredis 5 does not have.
   */
  setReplyContext(context?: { protocol?: number; replyMapping?: string }): void {
    const fields = this as unknown as Record<string, unknown>
    fields.protocol = context?.protocol ?? 2
    fields.replyMapping = context?.replyMapping ?? 'legacy'
  }
}

/**
 * The way a call names its script. `fallback` sends EVALSHA, and EVAL when the
 * server does not have the script yet (a new or restarted server, or after
 * SCRIPT FLUSH). The EVAL then goes out after any call sent meanwhile, so
 * two calls can run in the other order. `evalsha` rejects the call with the
 * NOSCRIPT reply instead, and `eval` sends the whole script, which Redis
 * keeps for the EVALSHA calls after it on the same connection.
 */
export type ScriptSendMode = 'fallback' | 'evalsha' | 'eval'

/**
 * Runs `script` with `keys` and `args` through `client`, named as `mode`
 * sets. A NOSCRIPT reply means that nothing ran, so the EVAL of `fallback`
 * cannot apply anything twice. Keys get the client's own `keyPrefix`
 * option, as ioredis commands do. Once `guard.abandoned` is set, a write of
 * the call by ioredis sends PING instead.
 */
export async function runFramedScript(
  client: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: readonly string[],
  guard?: ScriptCallGuard,
  mode: ScriptSendMode = 'fallback',
): Promise<unknown> {
  const prefix = client.options.keyPrefix ?? ''
  const prefixedKeys = prefix === '' ? keys : keys.map((key) => prefix + key)
  const { request, headerBytes } = frameRequest(script.sha, prefixedKeys, args)
  const sendEval = () => {
    const header = Buffer.from(`*${3 + prefixedKeys.length + args.length}\r\n${bulk('eval')}${bulk(script.lua)}`)
    const evalRequest = Buffer.concat([header, request.subarray(headerBytes)])
    return send(client, 'eval', script.lua, prefixedKeys, evalRequest, guard)
  }
  if (mode === 'eval') return sendEval()
  try {
    return await send(client, 'evalsha', script.sha, prefixedKeys, request, guard)
  } catch (err) {
    if (mode === 'evalsha' || !(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
    return sendEval()
  }
}

function send(
  client: RedisClient,
  name: 'evalsha' | 'eval',
  script: string,
  keys: readonly string[],
  request: Buffer,
  guard: ScriptCallGuard | undefined,
): Promise<unknown> {
  const command = new FramedScriptCommand(name, script, keys, request, guard)
  void client.sendCommand(command)
  return command.promise
}

/**
 * Bytes reserved beyond the ASCII length of each argument: `$`, up to ten
 * digits and two line ends. The spare room also makes a UTF-8 write that
 * the end of the buffer cut short differ in length from a complete one.
 */
const BULK_OVERHEAD_BYTES = 16

/**
 * Frames `EVALSHA sha numkeys key… arg…` in the Redis protocol. Returns the
 * request and the length of its part up to the SHA1, which an EVAL call
 * replaces.
 *
 * Each argument is written straight into one buffer, sized for an all-ASCII
 * request. Joining the arguments into one string first cost about 0.8 µs
 * more per request in a timing of 200-request batches, most of it in the
 * page faults of that string of hundreds of kilobytes (bench/README.md).
 */
export function frameRequest(
  sha: string,
  keys: readonly string[],
  args: readonly string[],
): { request: Buffer; headerBytes: number } {
  const header = `*${3 + keys.length + args.length}\r\n${bulk('evalsha')}${bulk(sha)}`
  const request = writeAscii(header, keys, args)
  if (request !== undefined) return { request, headerBytes: header.length }

  const utf8Parts: string[] = [header, bulk(String(keys.length))]
  for (const item of [...keys, ...args]) utf8Parts.push(bulk(item))
  return { request: Buffer.from(utf8Parts.join('')), headerBytes: header.length }
}

/**
 * Writes the request into a buffer, every bulk length taken as the number
 * of characters. Returns undefined as soon as an item is not all ASCII.
 */
function writeAscii(header: string, keys: readonly string[], args: readonly string[]): Buffer | undefined {
  let capacity = header.length + BULK_OVERHEAD_BYTES * (1 + keys.length + args.length)
  for (const key of keys) capacity += key.length
  for (const arg of args) capacity += arg.length

  const buffer = Buffer.allocUnsafe(capacity)
  let offset = buffer.write(header, 0, 'latin1')
  offset += buffer.write(`$${String(keys.length).length}\r\n${keys.length}\r\n`, offset, 'latin1')
  for (const items of [keys, args]) {
    for (const item of items) {
      offset = writeBulkLength(buffer, offset, item.length)
      // UTF-8 takes one byte per character only for ASCII. The room left
      // after the item is at least BULK_OVERHEAD_BYTES, more than any
      // character needs, so a write of this length was not cut short.
      const written = buffer.write(item, offset, 'utf8')
      if (written !== item.length) return undefined
      offset += written
      buffer[offset++] = 13 // \r
      buffer[offset++] = 10 // \n
    }
  }
  return buffer.subarray(0, offset)
}

/** Writes `$<length>\r\n` at `offset` and returns the offset after it. */
function writeBulkLength(buffer: Buffer, offset: number, length: number): number {
  buffer[offset++] = 36 // $
  let digits = 1
  for (let rest = length; rest >= 10; rest = Math.floor(rest / 10)) digits++
  let rest = length
  for (let index = offset + digits - 1; index >= offset; index--) {
    buffer[index] = 48 + (rest % 10)
    rest = Math.floor(rest / 10)
  }
  offset += digits
  buffer[offset++] = 13 // \r
  buffer[offset++] = 10 // \n
  return offset
}

/** Encodes one bulk string of the Redis protocol: `$<bytes>\r\n<text>\r\n`. */
function bulk(text: string): string {
  return `$${Buffer.byteLength(text)}\r\n${text}\r\n`
}
