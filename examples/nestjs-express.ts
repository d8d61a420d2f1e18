/**
 * Runs the NestJS example on NestJS's Express adapter, recorded by
 * `topMiddleware()`. NestJS registers its routes on Express's router, so
 * the task name is the route pattern (`/users/:id`), as in a plain Express app.
 *
 *   npx tsx examples/nestjs-express.ts               # port 3003, records to TOP_TRACKER_URL
 */
import { NestFactory } from '@nestjs/core'
import type { NestExpressApplication } from '@nestjs/platform-express'
// In an app of your own, import this from 'web-top'.
import { topMiddleware } from '../src/index'
import { ExampleModule } from './nestjs-app'
import { UNRECORDED_PATHS } from './routes'
import { runExample } from './run-example'

runExample({
  name: 'nestjs-express example',
  defaultPort: 3003,
  async start(port, host) {
    const app = await NestFactory.create<NestExpressApplication>(ExampleModule, { logger: ['error', 'warn'] })
    const recording = topMiddleware({ ignore: UNRECORDED_PATHS })
    app.use(recording)
    await app.listen(port, host)

    return {
      async close() {
        // The middleware is not a NestJS provider, so app.close() leaves it open.
        await app.close()
        await recording.close()
      },
      closeConnections: () => app.getHttpServer().closeAllConnections(),
    }
  },
}).catch((err: unknown) => {
  console.error('nestjs-express example: failed to start:', err)
  process.exit(1)
})
