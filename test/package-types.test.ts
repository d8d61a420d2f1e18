/**
 * The package's type declarations, compiled with `skipLibCheck` off by two
 * projects. The first has both CommonJS (`.ts`) and ES module (`.mts`)
 * files and imports the package by its own name, so it reads the built
 * `dist/` through the `exports` of package.json. The second is an Express
 * app without `fastify` installed.
 */
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(__dirname, '..')
const TSC = resolve(ROOT, 'node_modules/.bin/tsc')

/** Runs tsc on a project and returns its exit code and output. */
function compile(project: string): Promise<{ code: number; output: string }> {
  return promisify(execFile)(TSC, ['-p', project], { cwd: ROOT }).then(
    () => ({ code: 0, output: '' }),
    (err: { code?: number; stdout?: string }) => ({ code: err.code ?? 1, output: String(err.stdout ?? '') }),
  )
}

describe('package type declarations', () => {
  it('compile in a project that mixes CommonJS and ES modules', async () => {
    const result = await compile('test/fixtures/dual-module-types')
    expect(result.output).toBe('')
    expect(result.code).toBe(0)
  }, 60_000)

  it('compile without fastify installed', async () => {
    // A project folder outside the repository, whose node_modules has the
    // package's files and the types it needs, but no fastify anywhere above.
    const project = mkdtempSync(join(tmpdir(), 'web-top-express-only-'))
    try {
      const modules = join(project, 'node_modules')
      const installed = join(modules, 'web-top')
      mkdirSync(join(installed, 'dist'), { recursive: true })
      cpSync(join(ROOT, 'package.json'), join(installed, 'package.json'))
      cpSync(join(ROOT, 'dist/index.d.ts'), join(installed, 'dist/index.d.ts'))
      cpSync(join(ROOT, 'types'), join(installed, 'types'), { recursive: true })
      for (const dependency of ['ioredis', '@types/node', '@types/express', 'express']) {
        mkdirSync(join(modules, dependency, '..'), { recursive: true })
        symlinkSync(join(ROOT, 'node_modules', dependency), join(modules, dependency), 'dir')
      }
      writeFileSync(
        join(project, 'app.ts'),
        [
          "import express from 'express'",
          "import { topMiddleware } from 'web-top'",
          'const app = express()',
          "app.use(topMiddleware({ trackerUrl: 'memory://' }))",
          '',
        ].join('\n'),
      )
      const compilerOptions = {
        module: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      }
      writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['app.ts'] }))

      const result = await compile(project)
      expect(result.output).toBe('')
      expect(result.code).toBe(0)
    } finally {
      rmSync(project, { recursive: true, force: true })
    }
  }, 60_000)
})
