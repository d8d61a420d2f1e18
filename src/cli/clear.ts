/**
 * The `clear` command: deletes every active and completed task of the
 * tracker, after a y/N question on a terminal or with `--yes`.
 */
import { createInterface } from 'node:readline/promises'
import { CliError, EXIT_USAGE } from './cli-error'
import { RedisTracker } from '../trackers/redis-tracker'
import { connectTracker, withRedisHint, type TrackerConnection } from './connect'
import { countTrackerKeys, describePrefixAdvice } from './empty-prefix'
import type { TrackerOptions } from './options'
import { sanitizeText } from '../util/sanitize'

export interface ClearOptions extends TrackerOptions {
  /** Clears without asking. */
  yes: boolean
}

export interface ClearStreams {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  stdout: NodeJS.WritableStream
}

/**
 * Clears the tracker and returns the exit code: 0 when cleared or when
 * the prefix has no tracker key to clear, 1 when the user declined. Throws a usage `CliError` when it would have to ask but
 * standard input is not a terminal.
 */
export async function runClear(
  options: ClearOptions,
  streams: ClearStreams = { stdin: process.stdin, stdout: process.stdout },
): Promise<number> {
  if (!options.yes && streams.stdin.isTTY !== true) {
    throw new CliError(
      'Refusing to clear the tracker without --yes: standard input is not a terminal to ask on',
      EXIT_USAGE,
    )
  }

  const connection = await connectTracker(options.trackerUrl, options.keyPrefix, options.apiKey, {
    describeHttpRejection: (displayUrl) =>
      `Cannot clear ${displayUrl}: the HTTP tracker endpoint is read-only; ` +
      'clear the Redis tracker the app records to, or restart an app that records to memory://',
  })
  try {
    const target = describeTarget(connection.displayUrl, options.keyPrefix)
    if (await hasNoTrackerKeys(connection)) {
      // last_cleared_at alone would make `prefixes` list the prefix, and the empty-prefix note go away.
      const advice = describePrefixAdvice(options.keyPrefix ?? '', connection.displayUrl)
      // The prefix comes from the command line, which may contain characters that a terminal acts on.
      const message = sanitizeText(
        `Nothing to clear at ${target}: none of its processors, past_tasks, last_cleared_at and heartbeats ` +
          `keys exists, so nothing was written; ${advice}.`,
      )
      streams.stdout.write(`${message}\n`)
      return 0
    }
    if (!options.yes && !(await confirm(target, streams))) {
      streams.stdout.write('Not cleared.\n')
      return 1
    }
    try {
      await connection.tracker.clear()
    } catch (error) {
      throw new CliError(
        `Cannot clear the tracker at ${connection.displayUrl}: ${withRedisHint(connection.describeFailure(error), 'clear')}`,
      )
    }
    streams.stdout.write(`Cleared the active and completed tasks at ${target}.\n`)
    return 0
  } finally {
    await connection.close()
  }
}

/**
 * Returns true when the tracker is Redis and none of the prefix's tracker
 * keys exists. Returns false when EXISTS fails, so that the clear goes on.
 */
async function hasNoTrackerKeys(connection: TrackerConnection): Promise<boolean> {
  if (!(connection.tracker instanceof RedisTracker)) return false
  try {
    return (await countTrackerKeys(connection.tracker)) === 0
  } catch {
    return false
  }
}

/**
 * Returns `URL (key prefix "shop:")`, or `URL (no key prefix)`, naming what
 * a clear deletes. The prefix comes from the command line, so characters
 * that a terminal acts on are escaped, as in every other command's output.
 */
function describeTarget(displayUrl: string, keyPrefix: string | undefined): string {
  const prefix = keyPrefix ? `key prefix ${JSON.stringify(keyPrefix)}` : 'no key prefix'
  return sanitizeText(`${displayUrl} (${prefix})`)
}

async function confirm(target: string, streams: ClearStreams): Promise<boolean> {
  const prompt = createInterface({ input: streams.stdin, output: streams.stdout })
  try {
    // Ctrl-D on a terminal, or the end of other input, closes the prompt
    // before an answer, which counts as no. The line end that Enter would
    // have given is written then.
    const closed = new Promise<undefined>((resolve) => prompt.once('close', () => resolve(undefined)))
    const question = prompt.question(`Delete every active and completed task at ${target}? [y/N] `).catch((err: unknown) => {
      if ((err as { code?: unknown }).code === 'ABORT_ERR') return undefined
      throw err
    })
    const answer = await Promise.race([question, closed])
    if (answer === undefined) streams.stdout.write('\n')
    return answer !== undefined && /^\s*y(es)?\s*$/i.test(answer)
  } finally {
    prompt.close()
  }
}
