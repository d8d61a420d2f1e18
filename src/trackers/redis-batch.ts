/**
 * The writes a RedisTracker has not sent yet, in the argument layout of
 * APPLY_BATCH_SCRIPT: four items per operation. Two things keep a batch
 * small. The shared fields of records (process facts and tags, the same
 * for every request of a recorder) are sent once per script call and
 * referred to by number. And a request whose end comes while its start
 * still waits here is merged into one `q` operation, which sends the
 * fields both records contain once and never touches `processors`.
 */

/**
 * Operations of APPLY_BATCH_SCRIPT, which redis-scripts.ts describes. `-`
 * is a cancelled start, never sent, and `c` defines a shared text.
 */
export type Operation = 's' | 'u' | 'e' | 'q' | 'a' | 'd' | 'm' | 'x' | 'k' | 'c' | '-'

/** Items per operation: the operation and three strings. */
export const ITEMS_PER_OPERATION = 4

/** Bytes counted for one operation besides its record text: operation, processor id, bookkeeping. */
export const OPERATION_OVERHEAD_BYTES = 64

/** Operations that are sent, with what they weigh. */
export interface BatchChunk {
  items: string[]
  /** Bytes counted for these operations against the byte budget. */
  bytes: number
  /** Records written to `processors` or `past_tasks`, for the `written` and `dropped` counts. */
  records: number
  /** Patterns of the `m` operations, in order. */
  removals: string[]
  /**
   * The writer's sequence number of the latest call that sent the chunk,
   * or 0 before it is sent (write-sequence.ts).
   */
  sequence: number
  /** Whether a call that sent the chunk got no reply before its connection closed, so that Redis may have run it. */
  mayHaveRun: boolean
}

/** A start that waits in the batch. */
export interface PendingStart {
  index: number
  /** False for the unpublished start of a request left out by sampling. */
  published: boolean
  tail: string
  /** Number of its shared text, or -1 for none. */
  sharedIndex: number
}

export class WriteBatch {
  /**
   * Flattened operations: an operation code, then three strings whose
   * meaning depends on it. The code is the operation, followed by the
   * number of its shared text when it has one (`s0`).
   */
  #items: string[] = []
  #bytes = 0
  /** Index in `#items` of each start that waits here, by processor id. */
  readonly #pendingStarts = new Map<string, number>()
  /** Shared texts of the waiting operations, in the order of their numbers. */
  #sharedTexts: string[] = []
  readonly #sharedNumbers = new Map<string, number>()
  /** Operation codes with a shared text number, made once: `#codes[number][operation]`. */
  readonly #codes: Array<Partial<Record<Operation, string>>> = []

  /** Bytes of the waiting operations, as counted against the byte budget. */
  get bytes(): number {
    return this.#bytes
  }

  get isEmpty(): boolean {
    return this.#items.length === 0
  }

  /** Records of the waiting operations, counted as `takeChunk()` counts them. */
  get records(): number {
    let records = 0
    for (let i = 0; i < this.#items.length; i += ITEMS_PER_OPERATION) {
      const code = this.#items[i] as string
      if (code !== '-') records += countRecords(code.charAt(0) as Operation, this.#items[i + 2] as string)
    }
    return records
  }

  /** Number of items, four per operation. */
  get itemCount(): number {
    return this.#items.length
  }

  /**
   * Adds an operation whose record is `{head,tail<shared>}`. For a start
   * (`s`, or `u` for an unpublished one), remembers where it is, so that
   * its end can be merged with it. The shared text is not counted in the
   * byte budget: a recorder has at most four.
   */
  push(operation: Operation, target: string, head: string, tail: string, shared = ''): void {
    if (operation === 's' || operation === 'u') this.#pendingStarts.set(target, this.#items.length)
    const code = shared === '' ? operation : this.#codeFor(operation, this.#numberShared(shared))
    this.#items.push(code, target, head, tail)
    this.#bytes += operationBytes(operation, target, head, tail)
  }

  /**
   * Returns the start of `processorId` that still waits here, if its record
   * begins with this very `head` string, and stops tracking it as waiting.
   * Returns undefined when the start was sent already or was handed over
   * whole.
   */
  takePendingStart(processorId: string, head: string): PendingStart | undefined {
    const index = this.#pendingStarts.get(processorId)
    if (index === undefined) return undefined
    this.#pendingStarts.delete(processorId)
    if (this.#items[index + 2] !== head) return undefined

    const code = this.#items[index] as string
    return {
      index,
      published: code.charAt(0) === 's',
      tail: this.#items[index + 3] as string,
      sharedIndex: code.length > 1 ? Number(code.slice(1)) : -1,
    }
  }

  /** Returns whether the start of `processorId` waits in this batch. */
  hasPendingStart(processorId: string): boolean {
    return this.#pendingStarts.has(processorId)
  }

  /** Returns the number of a shared text in this batch, or -1 when no waiting operation has it. */
  sharedNumber(shared: string): number {
    return shared === '' ? -1 : (this.#sharedNumbers.get(shared) ?? -1)
  }

  /** Stops tracking a waiting start, for a request that ended with a record of its own. */
  forgetPendingStart(processorId: string): void {
    this.#pendingStarts.delete(processorId)
  }

  /**
   * Cancels the start of `processorId` while it still waits here, so that
   * it is never written or published. Returns false when it was sent already.
   */
  cancelPendingStart(processorId: string): boolean {
    const index = this.#pendingStarts.get(processorId)
    if (index === undefined) return false
    this.#pendingStarts.delete(processorId)
    this.cancelAt(index)
    return true
  }

  /** Turns the operation at `index` into `-` and releases its bytes. */
  cancelAt(index: number): void {
    const items = this.#items
    this.#bytes -= operationBytes(
      (items[index] as string).charAt(0) as Operation,
      items[index + 1] as string,
      items[index + 2] as string,
      items[index + 3] as string,
    )
    items[index] = '-'
    items[index + 1] = ''
    items[index + 2] = ''
    items[index + 3] = ''
  }

  /**
   * Puts operations without shared texts before the waiting ones, which
   * keeps their order after them, but after the `m` operations that lead
   * the batch. Nothing before such an `m` waits, so it may run first. A
   * recorder's first operation is an `m` that ends the entries an earlier
   * process left under its prefix, and the repair that follows the first
   * connection would otherwise delete them without ending them.
   */
  prepend(items: string[], bytes: number): void {
    // Indexes of waiting starts shift, and the whole batch is sent next anyway.
    this.#pendingStarts.clear()
    let leading = 0
    while (this.#items[leading] === 'm') leading += ITEMS_PER_OPERATION
    this.#items = [...this.#items.slice(0, leading), ...items, ...this.#items.slice(leading)]
    this.#bytes += bytes
  }

  /**
   * Removes up to `maxItems` items of operations from the front, leaving
   * out cancelled ones, and returns them after the definitions of the
   * shared texts. Starts still waiting can no longer be merged afterwards.
   */
  takeChunk(maxItems: number): BatchChunk {
    this.#pendingStarts.clear()
    const all = this.#items
    const end = Math.min(all.length, maxItems)
    this.#items = end === all.length ? [] : all.slice(end)

    const definitions = this.#sharedTexts.length * ITEMS_PER_OPERATION
    const items: string[] = []
    for (const text of this.#sharedTexts) items.push('c', text, '', '')
    let bytes = 0
    let records = 0
    const removals: string[] = []
    for (let i = 0; i < end; i += ITEMS_PER_OPERATION) {
      const code = all[i] as string
      if (code === '-') continue
      const operation = code.charAt(0) as Operation
      const target = all[i + 1] as string
      const head = all[i + 2] as string
      const tail = all[i + 3] as string
      items.push(code, target, head, tail)
      bytes += operationBytes(operation, target, head, tail)
      records += countRecords(operation, head)
      if (operation === 'm') removals.push(target)
    }
    this.#bytes -= bytes

    if (this.#items.length === 0) {
      this.#sharedTexts = []
      this.#sharedNumbers.clear()
    }
    // Definitions alone, left when every operation was cancelled, are not worth a call.
    if (items.length === definitions) items.length = 0
    return { items, bytes, records, removals, sequence: 0, mayHaveRun: false }
  }

  #numberShared(shared: string): number {
    const known = this.#sharedNumbers.get(shared)
    if (known !== undefined) return known
    const number = this.#sharedTexts.length
    this.#sharedTexts.push(shared)
    this.#sharedNumbers.set(shared, number)
    return number
  }

  #codeFor(operation: Operation, number: number): string {
    const codes = (this.#codes[number] ??= {})
    return (codes[operation] ??= `${operation}${number}`)
  }
}

/**
 * Returns the bytes an operation counts against the budget: its record
 * texts plus the overhead. A `q` operation carries the fixed fields as its
 * first string, where other operations carry a processor id or a pattern.
 */
export function operationBytes(operation: Operation, target: string, head: string, tail: string): number {
  if (operation === '-') return 0
  const fixed = operation === 'q' ? target.length : 0
  return fixed + head.length + tail.length + OPERATION_OVERHEAD_BYTES
}

function countRecords(operation: Operation, head: string): number {
  if (operation === 'q') return 2
  if (operation === 's' || operation === 'u') return 1
  return operation === 'e' && head !== '' ? 1 : 0
}
