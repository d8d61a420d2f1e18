/**
 * State that every copy of web-top in one process shares. An app can load
 * the package twice (through `require` and through `import`, or two
 * installed versions), and each copy has module variables of its own.
 * Every copy finds the same object under a registered symbol on
 * `globalThis`, so the copies agree on what must be unique in the process.
 */

/**
 * Returns the object stored under `web-top.<name>`, created with `create`
 * by the first copy that calls this. Copies of other versions find it too, so
 * the object's shape may only grow, and each field must keep its meaning.
 */
export function getProcessShared<T extends object>(name: string, create: () => T): T {
  const holder = globalThis as unknown as Record<symbol, T | undefined>
  const key = Symbol.for(`web-top.${name}`)
  holder[key] ??= create()
  return holder[key]
}
