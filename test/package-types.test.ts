/**
 * The package's type declarations, compiled by a TypeScript project that
 * has both CommonJS (`.ts`) and ES module (`.mts`) files, with
 * `skipLibCheck` off. The project imports the package by its own name, so
 * it reads the built `dist/` through the `exports` of package.json.
 */
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(__dirname, '..')
const TSC = resolve(ROOT, 'node_modules/.bin/tsc')

describe('package type declarations', () => {
  it('compile in a project that mixes CommonJS and ES modules', async () => {
    const result = await promisify(execFile)(TSC, ['-p', 'test/fixtures/dual-module-types'], { cwd: ROOT }).then(
      () => ({ code: 0, output: '' }),
      (err: { code?: number; stdout?: string }) => ({ code: err.code ?? 1, output: String(err.stdout ?? '') }),
    )
    expect(result.output).toBe('')
    expect(result.code).toBe(0)
  }, 60_000)
})
