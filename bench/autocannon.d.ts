/** The part of autocannon 9's API that bench/load.ts uses: the package ships no types. */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  interface AutocannonOptions {
    url: string
    connections?: number
    /** Seconds. */
    duration?: number
    headers?: Record<string, string>
  }

  interface AutocannonResult {
    /** Seconds the run took. */
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    requests: { total: number; average: number; sent: number }
  }

  interface AutocannonInstance extends EventEmitter {
    on(
      event: 'response',
      listener: (
        client: unknown,
        statusCode: number,
        bytes: number,
        responseTimeMs: number,
      ) => void,
    ): this
  }

  function autocannon(
    options: AutocannonOptions,
    callback: (err: Error | null, result: AutocannonResult) => void,
  ): AutocannonInstance

  export = autocannon
}
