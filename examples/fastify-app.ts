/**
 * The Fastify example app: the same routes as the Express one, recorded by
 * `topPlugin`. examples/fastify.ts runs it.
 */
import Fastify, { type FastifyInstance } from 'fastify'
// In an app of your own, import these from 'web-top'.
import { topPlugin, topTrackerRoute, type TopOptions } from '../src/index'
import {
  describeApp,
  findUser,
  randomSlowDelayMs,
  sleep,
  TRACKER_ENDPOINT_PATH,
  UNRECORDED_PATHS,
} from './routes'

export interface FastifyExampleOptions {
  /** Options of `topPlugin`. `ignore` defaults to `/health` and the tracker endpoint. */
  recording?: TopOptions
  /** API key of the tracker endpoint at `/web-top`; no endpoint is registered without one. */
  trackerApiKey?: string | undefined
}

type UserParams = { Params: { id: string } }

export async function createFastifyApp(options: FastifyExampleOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(topPlugin, { ignore: UNRECORDED_PATHS, ...options.recording })
  if (options.trackerApiKey !== undefined) {
    await app.register(topTrackerRoute, { path: TRACKER_ENDPOINT_PATH, apiKey: options.trackerApiKey })
  }

  app.get('/health', async (_request, reply) => reply.type('text/plain').send('ok'))

  app.get('/', async () => describeApp('fastify'))

  app.get('/slow', async () => {
    const delayMs = randomSlowDelayMs()
    await sleep(delayMs)
    return { delayMs }
  })

  app.get('/fail', async (_request, reply) => reply.code(500).send({ error: 'This route always fails.' }))

  app.post('/users', async (_request, reply) => {
    return reply.code(201).send({ id: 1 + Math.floor(Math.random() * 1000) })
  })

  app.get<UserParams>('/users/:id', async (request, reply) => {
    const user = findUser(request.params.id)
    return user === undefined ? reply.code(404).send({ error: 'User not found.' }) : user
  })

  app.put<UserParams>('/users/:id', async (request, reply) => {
    const user = findUser(request.params.id)
    if (user === undefined) return reply.code(404).send({ error: 'User not found.' })
    return { ...user, updated: true }
  })

  app.delete<UserParams>('/users/:id', async (request, reply) => {
    if (findUser(request.params.id) === undefined) return reply.code(404).send({ error: 'User not found.' })
    return reply.code(204).send()
  })

  return app
}
