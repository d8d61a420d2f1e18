/**
 * Behaviour shared by the Express and the Fastify example apps, so that both
 * handle the same routes in the same way and the traffic generator can
 * predict every status it receives.
 */

/** Paths the example apps never record. `/health` is for readiness checks. */
export const UNRECORDED_PATHS = ['/health', '/web-top']

/** Path of the tracker endpoint that the apps serve when `TOP_WEB_API_KEY` is set. */
export const TRACKER_ENDPOINT_PATH = '/web-top'

/** Range of the random delay of `GET /slow`, in milliseconds. */
export const SLOW_DELAY_MIN_MS = 500
export const SLOW_DELAY_MAX_MS = 3_000

export function randomSlowDelayMs(): number {
  return SLOW_DELAY_MIN_MS + Math.floor(Math.random() * (SLOW_DELAY_MAX_MS - SLOW_DELAY_MIN_MS))
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Returns the user with a numeric id, or `undefined` for any other id (the apps respond with 404). */
export function findUser(id: string): { id: number; name: string } | undefined {
  if (!/^\d{1,9}$/.test(id)) return undefined
  return { id: Number(id), name: `user-${id}` }
}

/** Body of `GET /`. */
export function describeApp(framework: string): object {
  return {
    framework,
    pid: process.pid,
    routes: ['GET /', 'GET /slow', 'GET /fail', 'GET|PUT|DELETE /users/:id', 'POST /users'],
  }
}
