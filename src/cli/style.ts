/**
 * Colours and text attributes as ANSI SGR sequences. Every function returns
 * the text unchanged when colour is off, so plain output has no escape codes.
 */

export type Colour = 'green' | 'yellow' | 'red' | 'cyan' | 'magenta' | 'dim'

export type Attribute = 'bold' | 'reverse'

const SGR_CODES: Record<Colour | Attribute, string> = {
  green: '32',
  yellow: '33',
  red: '31',
  cyan: '36',
  magenta: '35',
  dim: '2',
  bold: '1',
  reverse: '7',
}

const RESET = '\x1b[0m'

/** Wraps text in the SGR sequence of a colour or attribute, unless `enabled` is false. */
export function paint(
  text: string,
  style: Colour | Attribute | undefined,
  enabled: boolean,
): string {
  if (!enabled || style === undefined || text === '') return text
  return `\x1b[${SGR_CODES[style]}m${text}${RESET}`
}

/**
 * Decides whether to colour output: only on a terminal, and never when the
 * `NO_COLOR` environment variable is set to a non-empty value (no-color.org)
 * or `TERM` is `dumb`.
 */
export function shouldUseColour(
  stream: { isTTY?: boolean },
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (isDumbTerminal(env)) return false
  return stream.isTTY === true
}

/**
 * Checks whether `TERM` is `dumb`: a terminal without colours or cursor
 * movement, such as the shell buffer of an editor. The terminfo entry
 * `dumb` has neither capability.
 */
export function isDumbTerminal(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TERM === 'dumb'
}
