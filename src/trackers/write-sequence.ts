/**
 * Sequence numbers that make a batch call safe to send again. A call whose
 * connection closed before the reply may or may not have run. Each call
 * carries the next number of its writer, and the batch script stores the
 * latest number it ran in a key of that writer (the `n` operation in
 * redis-scripts.ts). A call sent again with a number that Redis has
 * already seen runs nothing, so the tracker can send the calls of a lost
 * connection again without writing a record twice.
 *
 * Calls on one connection run in the order they were sent, so the calls
 * that Redis ran before a connection closed come before those it did not
 * run. The tracker sends those again on the next connection, in their
 * first order, one at a time and before any new call, which gets a higher
 * number. A call that runs with a higher number first would make Redis skip
 * a lower one that never ran. Only a call sent again has its number
 * checked, and it keeps that number even when a later send is rejected
 * without running.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'

/**
 * How long Redis keeps a writer's latest number after its last call: 10
 * minutes. A call sent again after the key expired runs again, so this
 * bounds the outage after which a record may be stored twice.
 */
export const WRITE_SEQUENCE_TTL_MS = 600_000

export class WriteSequence {
  /** The writer's STRING key: `<prefix>write_seq:<host>/<pid>/<random>`. */
  readonly key: string
  #last = 0

  constructor(keyPrefix = '') {
    this.key = `${keyPrefix}write_seq:${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`
  }

  /** Returns the number of the next call. */
  next(): number {
    return ++this.#last
  }
}
