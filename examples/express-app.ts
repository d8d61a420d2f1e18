/**
 * The Express example app: a few routes with different speeds and statuses,
 * recorded by `topMiddleware()`. examples/express.ts runs it, and the demo
 * runs it inside the demo process.
 */
import express, { type Express } from 'express'
// In an app of your own, import these from 'web-top'.
import { topMiddleware, topTrackerEndpoint, type TopMiddleware, type TopOptions } from '../src/index'
import {
  describeApp,
  findUser,
  randomSlowDelayMs,
  sleep,
  TRACKER_ENDPOINT_PATH,
  UNRECORDED_PATHS,
} from './routes'

export interface ExpressExampleOptions {
  /** Options of `topMiddleware()`. `ignore` defaults to `/health` and the tracker endpoint. */
  recording?: TopOptions
  /** API key of the tracker endpoint at `/web-top`; no endpoint is mounted without one. */
  trackerApiKey?: string | undefined
}

export interface ExpressExample {
  app: Express
  recording: TopMiddleware
}

export function createExpressApp(options: ExpressExampleOptions = {}): ExpressExample {
  const app = express()
  const recording = topMiddleware({ ignore: UNRECORDED_PATHS, ...options.recording })

  // Mounted before the middleware, so the CLI's polling is not recorded.
  if (options.trackerApiKey !== undefined) {
    const tracker = recording.recorder.tracker
    app.all(TRACKER_ENDPOINT_PATH, topTrackerEndpoint({ apiKey: options.trackerApiKey, tracker }))
  }
  app.use(recording)
  app.use(express.json())

  app.get('/health', (_req, res) => {
    res.type('text/plain').send('ok')
  })

  app.get('/', (_req, res) => {
    res.json(describeApp('express'))
  })

  app.get('/slow', async (_req, res) => {
    const delayMs = randomSlowDelayMs()
    await sleep(delayMs)
    res.json({ delayMs })
  })

  app.get('/fail', (_req, res) => {
    res.status(500).json({ error: 'This route always fails.' })
  })

  app.post('/users', (_req, res) => {
    res.status(201).json({ id: 1 + Math.floor(Math.random() * 1000) })
  })

  app.get('/users/:id', (req, res) => {
    const user = findUser(req.params.id)
    if (user === undefined) res.status(404).json({ error: 'User not found.' })
    else res.json(user)
  })

  app.put('/users/:id', (req, res) => {
    const user = findUser(req.params.id)
    if (user === undefined) res.status(404).json({ error: 'User not found.' })
    else res.json({ ...user, updated: true })
  })

  app.delete('/users/:id', (req, res) => {
    if (findUser(req.params.id) === undefined) res.status(404).json({ error: 'User not found.' })
    else res.status(204).end()
  })

  return { app, recording }
}
