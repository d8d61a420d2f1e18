/**
 * The shapes of the package's Fastify plugins, declared without Fastify's
 * own types. The package's declarations then name no `fastify` module, so
 * a TypeScript project that uses Express alone compiles without `fastify`
 * installed, also with `skipLibCheck: false`. Fastify's `register()` (4
 * and 5) accepts both shapes and checks the options that it is given
 * against their second parameter.
 */

/**
 * A Fastify plugin that calls `done` when it is ready. The instance is
 * `any`, so that it fits every kind of Fastify app: HTTP/1.1, HTTPS or HTTP/2.
 */
export type CallbackPlugin<Options> = (instance: any, options: Options, done: (error?: Error) => void) => void

/** A Fastify plugin that returns a promise, with an instance of any kind as above. */
export type AsyncPlugin<Options> = (instance: any, options: Options) => Promise<void>
