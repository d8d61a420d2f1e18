import { defineConfig } from 'tsup'

const common = { target: 'node20', platform: 'node', sourcemap: true, splitting: false } as const

// The library ships as CommonJS and as an ES module. The declarations are
// built once, as dist/index.d.ts, and types/index.d.mts re-exports them for
// the ES module. The CLI runs only through bin/web-top-cli.js, which
// requires the CommonJS build. `npm run build` empties dist/ first, because
// the builds run side by side.
export default defineConfig([
  { ...common, entry: { index: 'src/index.ts' }, format: ['cjs'], dts: true },
  { ...common, entry: { index: 'src/index.ts' }, format: ['esm'] },
  { ...common, entry: { cli: 'src/cli/main.ts' }, format: ['cjs'] },
])
