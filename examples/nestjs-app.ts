/**
 * The NestJS example module: the routes of the Express and Fastify examples
 * in one controller. examples/nestjs-express.ts runs it on NestJS's Express
 * adapter and examples/nestjs-fastify.ts on its Fastify adapter.
 *
 * tsx and esbuild do not emit decorator metadata (`design:paramtypes`), so
 * nothing here is injected by constructor type. A service would need an
 * explicit `@Inject(TOKEN)`.
 */
import 'reflect-metadata'
import {
  Controller,
  Delete,
  Get,
  Header,
  HttpCode,
  HttpException,
  Module,
  NotFoundException,
  Param,
  Post,
  Put,
} from '@nestjs/common'
import { describeApp, findUser, randomSlowDelayMs, sleep } from './routes'

@Controller()
class ExampleController {
  @Get('health')
  @Header('Content-Type', 'text/plain')
  health(): string {
    return 'ok'
  }

  @Get()
  root(): object {
    return describeApp('nestjs')
  }

  @Get('slow')
  async slow(): Promise<{ delayMs: number }> {
    const delayMs = randomSlowDelayMs()
    await sleep(delayMs)
    return { delayMs }
  }

  @Get('fail')
  fail(): never {
    throw new HttpException({ error: 'This route always fails.' }, 500)
  }

  @Post('users')
  @HttpCode(201)
  createUser(): { id: number } {
    return { id: 1 + Math.floor(Math.random() * 1000) }
  }

  @Get('users/:id')
  getUser(@Param('id') id: string): object {
    return requireUser(id)
  }

  @Put('users/:id')
  updateUser(@Param('id') id: string): object {
    return { ...requireUser(id), updated: true }
  }

  @Delete('users/:id')
  @HttpCode(204)
  deleteUser(@Param('id') id: string): void {
    requireUser(id)
  }
}

function requireUser(id: string): { id: number; name: string } {
  const user = findUser(id)
  if (user === undefined) throw new NotFoundException({ error: 'User not found.' })
  return user
}

@Module({ controllers: [ExampleController] })
export class ExampleModule {}
