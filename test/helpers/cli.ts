/**
 * Runs the built `web-top-cli` bin as a child process, with an environment
 * free of the variables that would change its defaults.
 */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'

export const CLI_PATH = resolve(__dirname, '../../bin/web-top-cli.js')

/** Environment variables the CLI reads, removed so the machine's settings stay out of a test. */
export const CLI_VARIABLES: readonly string[] = [
  'TOP_TRACKER_URL',
  'TOP_TRACKER_PREFIX',
  'TOP_RECENT_COLUMNS',
  'TOP_RECENT_MODE',
  'TOP_RECENT_LIMIT',
  'TOP_REFRESH_RATE',
  'ACTIVE_COLUMNS',
  'COMPLETED_COLUMNS',
  'NO_COLOR',
  'FORCE_COLOR',
]

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Returns `process.env` without the CLI's variables, plus `extra`. */
export function cliEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of CLI_VARIABLES) delete env[name]
  return { ...env, ...extra }
}

export interface RunCliOptions {
  env?: Record<string, string>
  /** Kills the CLI with SIGKILL after this long. */
  timeoutMs?: number
  /** Sends the CLI SIGINT after this long, as Ctrl-C would. */
  interruptAfterMs?: number
}

/** Runs `node bin/web-top-cli.js ...args` and resolves when it exits. */
export function runCli(args: readonly string[], options: RunCliOptions = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: cliEnvironment(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))

    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000)
    const interrupt =
      options.interruptAfterMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGINT'), options.interruptAfterMs)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      clearTimeout(interrupt)
      resolvePromise({ code, stdout, stderr })
    })
  })
}
