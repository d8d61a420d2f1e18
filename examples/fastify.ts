/**
 * Runs the Fastify example app.
 *
 *   npx tsx examples/fastify.ts                      # port 3001, records to TOP_TRACKER_URL
 *   WORKERS=2 npx tsx examples/fastify.ts            # 2 processes sharing the port
 *
 * With `TOP_WEB_API_KEY` set it also serves its tracker at /web-top.
 */
import { createFastifyApp } from './fastify-app'
import { runExample } from './run-example'

runExample({
  name: 'fastify example',
  defaultPort: 3001,
  async start(port, host) {
    const app = await createFastifyApp({ trackerApiKey: process.env.TOP_WEB_API_KEY || undefined })
    await app.listen({ port, host })
    // app.close() waits for requests in flight, then the plugin's onClose hook closes the recorder.
    return { close: () => app.close() }
  },
}).catch((err: unknown) => {
  console.error('fastify example: failed to start:', err)
  process.exit(1)
})
