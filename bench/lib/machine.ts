/** Facts about the machine and the code under test, and per-core CPU counters from /proc/stat. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

export interface MachineFacts {
  /** Cores this process may run on, as `nproc` prints. */
  cores: number
  cpuModel: string
  nodeVersion: string
  kernel: string
  /** Commit of the repository and whether src/ has uncommitted changes. */
  commit: string
}

export function readMachineFacts(repoDir: string): MachineFacts {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  return {
    cores: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    nodeVersion: process.version,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    commit: describeCommit(repoDir),
  }
}

function describeCommit(repoDir: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: repoDir, encoding: 'utf8' }).trim()
    const head = git('rev-parse', '--short', 'HEAD')
    const changed = git('status', '--porcelain', '--', 'src')
    return changed === '' ? head : `${head} with uncommitted changes in src/`
  } catch {
    return 'unknown (not a git checkout)'
  }
}

/** Jiffies one core spent busy, stolen by the hypervisor, and in total since boot. */
export interface CoreTimes {
  busy: number
  steal: number
  total: number
}

/** Reads the `cpuN` line of /proc/stat: busy is everything but idle, iowait and steal. */
export function readCoreTimes(core: number): CoreTimes {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((text) => text.startsWith(`cpu${core} `))
  if (line === undefined) throw new Error(`/proc/stat has no line for cpu${core}`)

  const fields = line.trim().split(/\s+/).slice(1).map(Number)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0] = fields
  const [irq = 0, softirq = 0, steal = 0] = fields.slice(5)
  const busy = user + nice + system + irq + softirq
  return { busy, steal, total: busy + steal + idle + iowait }
}

/** Returns the share (0–1) of the time between two readings that the core was busy, or stolen. */
export function coreShare(before: CoreTimes, after: CoreTimes, part: 'busy' | 'steal'): number {
  const total = after.total - before.total
  return total <= 0 ? Number.NaN : (after[part] - before[part]) / total
}

/**
 * Waits until the given cores are almost idle: their busy share over a
 * 500 ms window stays at or below `maxBusyShare`. Gives up after
 * `timeoutMs`. Returns the last share seen, so the caller can report it.
 */
export async function waitForQuietCores(
  cores: readonly number[],
  maxBusyShare: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const before = cores.map(readCoreTimes)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const shares = cores.map((core, index) =>
      coreShare(before[index] as CoreTimes, readCoreTimes(core), 'busy'),
    )
    const busiest = Math.max(...shares)
    if (busiest <= maxBusyShare || Date.now() >= deadline) return busiest
  }
}

/** Pins this process and all its threads to one core. */
export function pinSelf(core: number): void {
  const args = ['-a', '-c', '-p', String(core), String(process.pid)]
  execFileSync('taskset', args, { stdio: 'ignore' })
}
