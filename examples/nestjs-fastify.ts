/**
 * Runs the NestJS example on NestJS's Fastify adapter, recorded by
 * `topPlugin`. NestJS registers its routes with Fastify, so the task name
 * is the route pattern (`/users/:id`), as in a plain Fastify app.
 *
 *   npx tsx examples/nestjs-fastify.ts               # port 3004, records to TOP_TRACKER_URL
 */
import { NestFactory } from '@nestjs/core'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
// In an app of your own, import this from 'web-top'.
import { topPlugin } from '../src/index'
import { ExampleModule } from './nestjs-app'
import { UNRECORDED_PATHS } from './routes'
import { runExample } from './run-example'

runExample({
  name: 'nestjs-fastify example',
  defaultPort: 3004,
  async start(port, host) {
    const app = await NestFactory.create<NestFastifyApplication>(ExampleModule, new FastifyAdapter(), {
      logger: ['error', 'warn'],
    })
    await app.register(topPlugin, { ignore: UNRECORDED_PATHS })
    await app.listen(port, host)

    // app.close() closes Fastify, whose onClose hook closes the recorder.
    return { close: () => app.close() }
  },
}).catch((err: unknown) => {
  console.error('nestjs-fastify example: failed to start:', err)
  process.exit(1)
})
