/**
 * Runs a Koa app with the routes of the Express and Fastify examples,
 * recorded through web-top's node:http adapter. A first Koa middleware
 * hands `ctx.req` and `ctx.res` to `track()`, and the route pattern that
 * @koa/router matched (`/users/:id`) becomes the task name.
 *
 *   npx tsx examples/koa.ts                           # port 3002, records to TOP_TRACKER_URL
 *   TOP_TRACKER_PREFIX=koa: npx tsx examples/koa.ts   # keys koa:processors, koa:past_tasks, …
 */
import type { Server } from 'node:http'
import Router from '@koa/router'
import Koa from 'koa'
// In an app of your own, import this from 'web-top'.
import { createRequestTracker, type RequestTracker } from '../src/index'
import { describeApp, findUser, randomSlowDelayMs, sleep, UNRECORDED_PATHS } from './routes'
import { runExample } from './run-example'

function createKoaApp(top: RequestTracker): Koa {
  const app = new Koa()

  app.use(async function recordRequest(ctx, next) {
    // @koa/router sets `_matchedRoute` while routing, after this middleware
    // started, so the name is read when the response ends.
    const readRoutePattern = () => {
      const route: unknown = ctx._matchedRoute
      return typeof route === 'string' ? route : null
    }
    top.track(ctx.req, ctx.res, { resolveTaskName: readRoutePattern })
    await next()
  })

  const router = new Router()
  router.get('/health', (ctx) => {
    ctx.type = 'text/plain'
    ctx.body = 'ok'
  })
  router.get('/', (ctx) => {
    ctx.body = describeApp('koa')
  })
  router.get('/slow', async (ctx) => {
    const delayMs = randomSlowDelayMs()
    await sleep(delayMs)
    ctx.body = { delayMs }
  })
  router.get('/fail', (ctx) => {
    ctx.status = 500
    ctx.body = { error: 'This route always fails.' }
  })
  router.post('/users', (ctx) => {
    ctx.status = 201
    ctx.body = { id: 1 + Math.floor(Math.random() * 1000) }
  })
  router.get('/users/:id', (ctx) => {
    const user = findUser(ctx.params.id ?? '')
    ctx.status = user === undefined ? 404 : 200
    ctx.body = user ?? { error: 'User not found.' }
  })
  router.put('/users/:id', (ctx) => {
    const user = findUser(ctx.params.id ?? '')
    ctx.status = user === undefined ? 404 : 200
    ctx.body = user === undefined ? { error: 'User not found.' } : { ...user, updated: true }
  })
  router.delete('/users/:id', (ctx) => {
    if (findUser(ctx.params.id ?? '') === undefined) {
      ctx.status = 404
      ctx.body = { error: 'User not found.' }
    } else {
      ctx.status = 204
    }
  })

  app.use(router.routes())
  app.use(router.allowedMethods())
  return app
}

runExample({
  name: 'koa example',
  defaultPort: 3002,
  async start(port, host) {
    const top = createRequestTracker({ ignore: UNRECORDED_PATHS })
    const app = createKoaApp(top)
    const server = await new Promise<Server>((resolve, reject) => {
      const listening = app.listen(port, host, () => resolve(listening))
      listening.once('error', reject)
    })

    return {
      async close() {
        const closed = new Promise((resolve) => server.close(resolve))
        server.closeIdleConnections()
        await closed
        await top.close()
      },
      closeConnections: () => server.closeAllConnections(),
    }
  },
}).catch((err: unknown) => {
  console.error('koa example: failed to start:', err)
  process.exit(1)
})
