/**
 * An Express app with web-top and no signal handler of its own, run by
 * shutdown.test.ts through the tsx command (`tsx test/helpers/tsx-cli-app.ts`),
 * which adds a hidden signal listener of its own. It records to
 * `TEST_REDIS_URL`, leaves every request to `/wait` unanswered, and prints
 * `listening <port>` once it listens.
 */
import express from 'express'
import { topMiddleware } from '../../src/index'

const app = express()
app.use(topMiddleware({ trackerUrl: process.env.TEST_REDIS_URL }))
app.get('/wait', () => {})
const server = app.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number }
  console.log(`listening ${port}`)
})
