/**
 * Traffic generator for the example apps.
 *
 *   npx tsx examples/traffic.ts --requests 500 --concurrency 20
 *   npx tsx examples/traffic.ts --duration 60 --url http://127.0.0.1:3000 --url http://127.0.0.1:3001
 *
 * It sends only to loopback addresses unless --allow-remote is passed, and
 * prints the number of responses per status at the end (or JSON with --json).
 */
import { parseArgs } from 'node:util'
import { generateTraffic, type TrafficSummary } from './traffic-generator'

const USAGE = `Usage: tsx examples/traffic.ts [options]

  --url URL          base URL of an app; repeat for several (default http://127.0.0.1:3000)
  --requests N       number of requests to send (default 200 when --duration is not given)
  --duration S       stop starting requests after S seconds
  --concurrency C    requests in flight at once (default 10)
  --rate R           maximum requests started per second (default unlimited)
  --slow-share F     share of requests to GET /slow, from 0 to 1 (default 0.12)
  --json             print the counts as JSON instead of a table
  --allow-remote     allow hosts other than loopback addresses
  --help             show this help`

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', multiple: true },
      requests: { type: 'string' },
      duration: { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      'slow-share': { type: 'string' },
      json: { type: 'boolean' },
      'allow-remote': { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  })
  if (values.help) {
    console.log(USAGE)
    return
  }

  const duration = parseNumber('--duration', values.duration, 0.1, 86_400)
  const summary = await generateTraffic({
    urls: values.url ?? ['http://127.0.0.1:3000'],
    requests: parseNumber('--requests', values.requests, 1, 10_000_000, true) ?? (duration ? undefined : 200),
    durationMs: duration === undefined ? undefined : duration * 1000,
    concurrency: parseNumber('--concurrency', values.concurrency, 1, 1000, true),
    ratePerSecond: parseNumber('--rate', values.rate, 0.1, 100_000),
    slowShare: parseNumber('--slow-share', values['slow-share'], 0, 1),
    allowRemote: values['allow-remote'] === true,
  })

  if (values.json) console.log(JSON.stringify(summary))
  else printTable(summary)
}

function parseNumber(
  name: string,
  text: string | undefined,
  min: number,
  max: number,
  whole = false,
): number | undefined {
  if (text === undefined) return undefined

  const value = Number(text)
  const valid = text.trim() !== '' && value >= min && value <= max && (!whole || Number.isInteger(value))
  if (!valid) {
    const expected = `a ${whole ? 'whole ' : ''}number from ${min} to ${max}`
    throw new RangeError(`Invalid ${name} ${JSON.stringify(text)}: expected ${expected}.`)
  }
  return value
}

function printTable(summary: TrafficSummary): void {
  const seconds = summary.elapsedMs / 1000
  const rate = (summary.total / seconds).toFixed(1)
  console.log(`${summary.total} requests in ${seconds.toFixed(1)} s (${rate}/s)`)
  const statuses = Object.keys(summary.byStatus).sort()
  for (const status of statuses) console.log(`  ${status.padEnd(6)} ${summary.byStatus[status]}`)
  for (const message of summary.errors) console.log(`  error: ${message}`)
}

main().catch((err: unknown) => {
  console.error(`traffic: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(2)
})
