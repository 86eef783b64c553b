import { parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { parsePeer } from '../api/validate.js'
import { UsageError } from './errors.js'
import { InvalidLogOptionError, LOG_FORMATS, LOG_LEVELS, resolveLogOptions, type LogOptions } from '../logging/index.js'

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** Placeholder shown in help, e.g. `<ms>` */
  arg?: string
  description: string
}

export interface CommandSpec {
  name: string
  /** Positional arguments as shown in help, e.g. `<peer>` */
  args?: string
  options: Record<string, OptionSpec>
  /** Extra paragraphs under the usage line */
  details?: string
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>

export interface ParsedArgs {
  values: OptionValues
  positionals: string[]
}

/** Flags every command takes */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  'data-dir': { type: 'string', arg: '<dir>', description: 'data directory (default: $MOLT_HOME, else ~/.molt)' },
  json: { type: 'boolean', description: 'machine-readable output: JSON on stdout' },
  help: { type: 'boolean', short: 'h', description: 'show this help' }
}

/** --log-level / --log-format, taken by the long-running commands (agent, relay) */
export const LOG_OPTIONS: Record<string, OptionSpec> = {
  'log-level': { type: 'string', arg: '<level>', description: `event lines to print: ${LOG_LEVELS.join(', ')} (each includes the ones before it; default: $MOLT_LOG_LEVEL, else config.json log.level, else info)` },
  'log-format': { type: 'string', arg: '<format>', description: `${LOG_FORMATS.join(' or ')}: json = one {"ts","level","msg",…} object per line on stdout, never payloads or keys (default: $MOLT_LOG_FORMAT, else config.json log.format, else pretty)` }
}

/** The log flags over `base` (config.json `log` with MOLT_LOG_* applied); a bad value is a UsageError */
export function logFlags (values: OptionValues, base: Partial<LogOptions>): LogOptions {
  try {
    return resolveLogOptions({ level: stringFlag(values, 'log-level'), format: stringFlag(values, 'log-format') }, base)
  } catch (err) {
    if (err instanceof InvalidLogOptionError) throw new UsageError(err.message)
    throw err
  }
}

export function parseCommandArgs (spec: CommandSpec, argv: string[]): ParsedArgs {
  const options = { ...spec.options, ...COMMON_OPTIONS }
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, {
        type: o.type, multiple: o.multiple === true, ...(o.short != null && { short: o.short })
      }]))
    })
    return { values: values as OptionValues, positionals }
  } catch (err: any) {
    if (typeof err.code !== 'string' || !err.code.startsWith('ERR_PARSE_ARGS')) throw err
    // parseArgs' messages are long and mention parseArgs internals; keep their first sentence
    throw new UsageError(`${String(err.message).split('. ')[0].replace(/\.$/, '')} (see molt ${spec.name} --help)`)
  }
}

export function commandHelp (spec: CommandSpec, summary: string): string {
  const options = { ...spec.options, ...COMMON_OPTIONS }
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short != null ? `-${o.short}, ` : '    '}--${name}${o.arg != null ? ` ${o.arg}` : ''}${o.multiple === true ? ' …' : ''}`
    return [flag, o.description + (o.multiple === true ? ' (repeatable)' : '')]
  })
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2
  const lines = [
    `Usage: molt ${spec.name}${spec.args != null ? ` ${spec.args}` : ''} [options]`,
    '',
    summary
  ]
  if (spec.details != null) lines.push('', spec.details)
  lines.push('', 'Options:', ...rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`))
  return lines.join('\n')
}

export function mainHelp (specs: Array<{ name: string, summary: string }>): string {
  const width = Math.max(...specs.map(s => s.name.length)) + 2
  return [
    'Usage: molt <command> [options]',
    '',
    'A peer-to-peer node for AI agents: MoltSpeak over libp2p.',
    '',
    'Commands:',
    ...specs.map(s => `  ${s.name.padEnd(width)}${s.summary}`),
    '',
    'Common options:',
    ...Object.entries(COMMON_OPTIONS).map(([name, o]) => `  ${(`--${name}${o.arg != null ? ` ${o.arg}` : ''}`).padEnd(18)}${o.description}`),
    '',
    '`molt --version` prints molt\'s version (--json: {"version","node"}).',
    'Exit codes: 0 ok, 1 failure (stderr says why; --json: {"error":{"code","message"}} on stdout),',
    '2 bad command line, 130 interrupted (SIGINT/SIGTERM); molt send and molt receipt: 75 not delivered',
    '(or not here) yet, try again later; molt task claim: 3 another agent won.',
    '',
    'Run `molt <command> --help` (or `molt help <command>`) for a command\'s options.'
  ].join('\n')
}

/** A whole number in [min, max] from a flag value */
export function integerFlag (value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${flag} must be a whole number between ${min} and ${max}, got "${value}"`)
  }
  return Number(value)
}

/** The single positional a command needs */
export function onePositional (args: ParsedArgs, spec: CommandSpec, name: string): string {
  if (args.positionals.length === 0) throw new UsageError(`molt ${spec.name} needs ${name} (see molt ${spec.name} --help)`)
  if (args.positionals.length > 1) throw new UsageError(`unexpected argument "${args.positionals[1]}" (see molt ${spec.name} --help)`)
  return args.positionals[0]
}

/** The `<peer>` positional, checked to be a PeerId or multiaddr */
export function peerPositional (args: ParsedArgs, spec: CommandSpec): string {
  const peer = onePositional(args, spec, '<peer>')
  try {
    parsePeer(peer, '<peer>')
  } catch (err: any) {
    // a word that is no PeerId: libp2p's decoder message ("pass a multibase decoder …") says nothing useful
    if (!peer.startsWith('/')) throw new UsageError(`<peer> "${peer}" is neither a PeerId (12D3KooW…) nor a multiaddr (/ip4/…/tcp/…/p2p/<PeerId>) (see molt ${spec.name} --help)`)
    throw new UsageError(`${err.message as string} (see molt ${spec.name} --help)`)
  }
  return peer
}

export function noPositionals (args: ParsedArgs, spec: CommandSpec): void {
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}" (see molt ${spec.name} --help)`)
}

export function stringFlag (values: OptionValues, name: string): string | undefined {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

export function listFlag (values: OptionValues, name: string): string[] | undefined {
  const value = values[name]
  return Array.isArray(value) ? value : undefined
}

export function booleanFlag (values: OptionValues, name: string): boolean {
  return values[name] === true
}

/** A --bootstrap or --relay value: a multiaddr whose last component is /p2p/<PeerId> */
export function checkPeerAddress (address: string, flag: string): string {
  let last
  try {
    last = multiaddr(address).getComponents().at(-1)
  } catch (err: any) {
    throw new UsageError(`${flag} ${address} is not a multiaddr: ${err.message}`)
  }
  if (last?.name !== 'p2p' || last.value == null) throw new UsageError(`${flag} ${address} must end in /p2p/<PeerId>`)
  try {
    peerIdFromString(last.value)
  } catch (err: any) {
    throw new UsageError(`${flag} ${address} does not end in a valid PeerId: ${err.message}`)
  }
  return address
}
