/**
 * Facts about the recording process, computed once: host, pid, thread,
 * command line and default tags. Also the pool of request slots that
 * processor ids are made of.
 */
import { hostname } from 'node:os'
import { threadId } from 'node:worker_threads'

/** Command-line arguments that carry a secret value, as in `--password=…` or `--api-key=…`. */
const SECRET_ARGUMENT = /^(--?[\w.-]*(token|passw(or)?d|secret|key|auth|credential)[\w.-]*=).+$/i

/** Same-process facts, written into every task of this process. */
export interface ProcessFacts {
  host_name: string
  process_id: number
  thread_id: number
  command_line: string[]
}

export function readProcessFacts(): ProcessFacts {
  return {
    host_name: hostname(),
    process_id: process.pid,
    thread_id: threadId,
    command_line: process.argv.map(redactArgument),
  }
}

/** Returns the processor name shown in the Worker column when the user set none. */
export function defaultProcessorName(facts: ProcessFacts): string {
  return facts.thread_id === 0 ? `node:${facts.process_id}` : `node:${facts.process_id}/w${facts.thread_id}`
}

/** Tags every task of this process carries unless the user overrides them. */
export function defaultTags(): Record<string, string> {
  const tags: Record<string, string> = { 'node.version': process.version }
  if (process.env.npm_package_name) tags['service.name'] = process.env.npm_package_name
  if (process.env.npm_package_version) tags['service.version'] = process.env.npm_package_version
  return tags
}

/** Returns the prefix that every processor id of this process starts with. */
export function processorIdPrefix(facts: ProcessFacts): string {
  return `${facts.host_name}/${facts.process_id}-${facts.thread_id}-`
}

/**
 * Request slots of one recorder. A slot is held by one request at a time,
 * so two in-flight requests never share a processor id. Freed slots are
 * reused, which keeps the number of distinct ids at the peak concurrency.
 */
export class SlotPool {
  readonly #free: number[] = []
  #next = 0

  acquire(): number {
    return this.#free.pop() ?? this.#next++
  }

  release(slot: number): void {
    this.#free.push(slot)
  }

  /** Number of slots ever handed out: the peak number of concurrent requests. */
  get size(): number {
    return this.#next
  }
}

function redactArgument(argument: string): string {
  const match = SECRET_ARGUMENT.exec(argument)
  return match === null ? argument : `${match[1]}[REDACTED]`
}
