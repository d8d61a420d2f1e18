/**
 * Builds dist/ once before the tests when dist/cli.js is missing or older
 * than any source file, so the CLI tests run the real bin against current code.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'

const ROOT = resolve(__dirname, '..')
const BUILD_OUTPUT = join(ROOT, 'dist', 'cli.js')
const BUILD_INPUTS = ['src', 'package.json', 'tsup.config.ts']

export default function buildDistIfStale(): void {
  if (existsSync(BUILD_OUTPUT) && statSync(BUILD_OUTPUT).mtimeMs >= newestInputMs()) return
  execFileSync('npx', ['tsup'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
}

function newestInputMs(): number {
  return Math.max(...BUILD_INPUTS.map((input) => newestMtimeMs(join(ROOT, input))))
}

function newestMtimeMs(path: string): number {
  const stats = statSync(path)
  if (!stats.isDirectory()) return stats.mtimeMs
  return readdirSync(path).reduce(
    (newest, entry) => Math.max(newest, newestMtimeMs(join(path, entry))),
    stats.mtimeMs,
  )
}
