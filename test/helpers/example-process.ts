/**
 * Runs the scripts of examples/ as child processes (`node --import tsx`),
 * with an environment free of the machine's web-top settings, so that a test
 * always names the tracker the apps record to.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import type { TrafficSummary } from '../../examples/traffic-generator'
import type { HttpTask } from '../../src/task/http-task'

export const ROOT = resolve(__dirname, '../..')

/** Variables that change where the examples record or what the CLI reads. */
const WEB_TOP_VARIABLES = [
  'TOP_TRACKER_URL',
  'TOP_TRACKER_PREFIX',
  'TOP_MAX_COMPLETED_TASKS',
  'TOP_WEB_API_KEY',
  'PORT',
  'WORKERS',
]

export interface ExampleProcess {
  child: ChildProcess
  /** Standard output and standard error so far. */
  output(): string
  /** Resolves once `pattern` has matched `count` lines of output; rejects on exit or after `timeoutMs`. */
  waitForLines(pattern: RegExp, count: number, timeoutMs?: number): Promise<string[]>
  /** Sends SIGTERM and resolves with the exit code; SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<number | null>
}

/** Returns `process.env` without web-top's variables, plus `extra`. */
export function exampleEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of WEB_TOP_VARIABLES) delete env[name]
  return { ...env, ...extra }
}

/**
 * Starts `examples/<script>`. `trackerUrl` is required, so that no example
 * falls back to the package default of redis://127.0.0.1:6379.
 */
export function startExample(
  script: string,
  options: { trackerUrl: string; args?: string[]; env?: Record<string, string> },
): ExampleProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/${script}`, ...(options.args ?? [])], {
    cwd: ROOT,
    env: exampleEnvironment({ TOP_TRACKER_URL: options.trackerUrl, ...options.env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const listeners = new Set<() => void>()
  const onData = (chunk: string) => {
    output += chunk
    for (const listener of listeners) listener()
  }
  child.stdout?.setEncoding('utf8').on('data', onData)
  child.stderr?.setEncoding('utf8').on('data', onData)
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)))

  return {
    child,
    output: () => output,
    waitForLines(pattern, count, timeoutMs = 15_000) {
      return new Promise((resolveLines, reject) => {
        const check = () => {
          const lines = output.split('\n').filter((line) => pattern.test(line))
          if (lines.length < count) return
          finish()
          resolveLines(lines)
        }
        const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs)
        const fail = (reason: string) => {
          finish()
          const message = `examples/${script}: ${count} lines matching ${pattern} not seen (${reason})`
          reject(new Error(`${message}; output:\n${output}`))
        }
        const onExit = () => fail('the process exited')
        const finish = () => {
          clearTimeout(timer)
          listeners.delete(check)
          child.off('exit', onExit)
        }
        listeners.add(check)
        child.once('exit', onExit)
        check()
      })
    },
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/** Runs examples/traffic.ts with `--json` and resolves with its summary. */
export async function runTraffic(args: string[], timeoutMs = 60_000): Promise<TrafficSummary> {
  const traffic = startExample('traffic.ts', { trackerUrl: 'memory://', args: [...args, '--json'] })
  const timer = setTimeout(() => traffic.child.kill('SIGKILL'), timeoutMs)
  // 'close' comes after the output streams have ended, so the JSON line is complete.
  const code = await new Promise<number | null>((resolveClose) => traffic.child.once('close', resolveClose))
  clearTimeout(timer)
  if (code !== 0) throw new Error(`examples/traffic.ts exited with code ${code}:\n${traffic.output()}`)
  return JSON.parse(traffic.output().trim()) as TrafficSummary
}

/** Counts tasks by the key the generator counts by: `host method path status`. */
export function countTasksByRoute(tasks: HttpTask[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const task of tasks) {
    const key = `${task.host} ${task.method} ${task.path} ${task.status_code}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

/** Returns the generator's counts under the same key as `countTasksByRoute`. */
export function countTrafficByRoute(summary: TrafficSummary): Map<string, number> {
  const counts = new Map<string, number>()
  for (const route of summary.byRoute) {
    const key = `${new URL(route.origin).host} ${route.method} ${route.path} ${route.status}`
    counts.set(key, (counts.get(key) ?? 0) + route.count)
  }
  return counts
}
