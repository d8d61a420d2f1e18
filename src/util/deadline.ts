/**
 * Waits for `promise` at most `timeoutMs` milliseconds. Resolves true when
 * it settled in time (fulfilled or rejected) and false when the time ran
 * out. Never rejects: a later rejection of `promise` is handled here.
 */
export function settleWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs)
    const settle = () => {
      clearTimeout(timer)
      resolve(true)
    }
    promise.then(settle, settle)
  })
}
