/**
 * Runs the Express example app.
 *
 *   npx tsx examples/express.ts                      # port 3000, records to TOP_TRACKER_URL
 *   WORKERS=4 npx tsx examples/express.ts            # 4 processes sharing the port
 *   TOP_TRACKER_URL=redis://127.0.0.1:6379/1 npx tsx examples/express.ts --port 8080
 *
 * With `TOP_WEB_API_KEY` set it also serves its tracker at /web-top.
 * Then `web-top-cli live --tracker-url http://127.0.0.1:3000/web-top` reads it.
 */
import type { Server } from 'node:http'
import { createExpressApp } from './express-app'
import { runExample } from './run-example'

runExample({
  name: 'express example',
  defaultPort: 3000,
  async start(port, host) {
    const { app, recording } = createExpressApp({ trackerApiKey: process.env.TOP_WEB_API_KEY || undefined })
    const server = await new Promise<Server>((resolve, reject) => {
      const listening = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(listening)))
    })

    return {
      async close() {
        const closed = new Promise((resolve) => server.close(resolve))
        server.closeIdleConnections()
        await closed
        await recording.close()
      },
      closeConnections: () => server.closeAllConnections(),
    }
  },
}).catch((err: unknown) => {
  console.error('express example: failed to start:', err)
  process.exit(1)
})
