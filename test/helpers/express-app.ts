/**
 * An Express 5 app with the web-top middleware on 127.0.0.1 that replies
 * `ok` to `GET /`, for tests that need the middleware and the server
 * apart: its tracker's stats, or the server closed without the recorder.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express, { type Express } from 'express'
import { topMiddleware, type TopMiddleware, type TopOptions } from '../../src/index'

export interface RecordedExpressApp {
  middleware: TopMiddleware
  server: Server
  /** URL of `GET /`. */
  url: string
  /** Closes the server only; the recorder goes idle once its requests end. */
  closeServer(): Promise<void>
}

/** Starts the app; `addRoutes` may add routes of the test's own after `GET /`. */
export async function startRecordedExpress(
  options: TopOptions,
  addRoutes: (app: Express) => void = () => {},
): Promise<RecordedExpressApp> {
  const middleware = topMiddleware({ handleSignals: false, ...options })
  const app = express()
  app.use(middleware)
  app.get('/', (_req, res) => res.send('ok'))
  addRoutes(app)
  const server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    middleware,
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    closeServer: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
