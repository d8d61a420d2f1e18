/**
 * A JSON reply larger than the 64 MiB that the HTTP tracker reads, for
 * tests of what a reader does with it.
 */
import type { ServerResponse } from 'node:http'

/** Size of the reply's padding in MiB: one more than the reader accepts. */
const PADDING_MIB = 65

/**
 * Writes an empty JSON array or object (`opening` is `[` or `{`) padded with
 * 65 MiB of spaces, respecting back-pressure. The reader stops reading
 * before the end and closes the socket, so write errors are ignored.
 */
export function writeOversizedJson(res: ServerResponse, opening: '[' | '{'): void {
  const chunk = Buffer.alloc(1024 * 1024, 0x20)
  const closing = opening === '[' ? ']' : '}'
  res.on('error', () => {})
  res.writeHead(200, { 'content-type': 'application/json' })
  res.write(opening)
  let sent = 0
  const writeMore = () => {
    while (sent < PADDING_MIB) {
      sent++
      if (!res.write(chunk)) {
        res.once('drain', writeMore)
        return
      }
    }
    res.end(closing)
  }
  writeMore()
}
