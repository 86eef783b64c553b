import { COMMON_OPTIONS, type OptionSpec } from './args.js'
import { UsageError } from './errors.js'
import type { Command, CommandContext } from './command.js'

/** One row of a command's subcommand table (`molt task claim …`) */
export interface Subcommand {
  name: string
  /** What follows the name in help, e.g. `<id> [--reason text]` */
  usage?: string
  /** What it does: one help line, or several */
  summary: string | string[]
  /** Positional arguments after the name: an exact count, or `[min, max]`. @default 0 */
  positionals?: number | readonly [number, number]
  /** The command's options this subcommand takes; any other one given is a usage error. @default none */
  options?: readonly string[]
  /** Resolves to the exit code (0 when nothing is returned); `rest` are the positionals after the name */
  run(context: CommandContext, rest: string[]): Promise<number | void>
}

export interface SubcommandsInit {
  name: string
  /** Paragraphs of help under the subcommand table */
  notes?: string[]
  /** Every option of every subcommand, with help text */
  options: Record<string, OptionSpec>
}

/** Width of the usage column in the help table; a longer usage puts its summary on the next line */
const USAGE_WIDTH = 33

/**
 * A command made of subcommands (`molt task`, `molt topic`, `molt trust`):
 * its help lists the table, and every subcommand gets the same checks before
 * it runs — a missing or unknown subcommand, a wrong number of arguments, an
 * option meant for another subcommand — each a UsageError (exit 2) naming
 * what is wrong and where help is.
 */
export function subcommandCommand (init: SubcommandsInit, table: readonly Subcommand[]): Command {
  const names = table.map(s => s.name)
  const see = `(see molt ${init.name} --help)`
  return {
    spec: {
      name: init.name,
      args: `<${names.join('|')}> …`,
      details: [...table.flatMap(s => helpRows(init.name, s)), ...(init.notes != null ? ['', ...init.notes] : [])].join('\n'),
      options: init.options
    },

    async run (context) {
      const [name, ...rest] = context.args.positionals
      if (name === undefined) throw new UsageError(`molt ${init.name} needs a subcommand: ${listed(names)} ${see}`)
      const sub = table.find(s => s.name === name)
      if (sub === undefined) throw new UsageError(`unknown subcommand "${name}" of molt ${init.name}: ${listed(names)} ${see}`)
      const [min, max] = typeof sub.positionals === 'number' ? [sub.positionals, sub.positionals] : sub.positionals ?? [0, 0]
      if (rest.length < min || rest.length > max) {
        const usage = `molt ${init.name} ${sub.name}${sub.usage != null ? ` ${sub.usage}` : ''}`
        throw new UsageError(rest.length > max ? `unexpected argument "${rest[max]}": ${usage} ${see}` : `missing argument: ${usage} ${see}`)
      }
      for (const [option, value] of Object.entries(context.args.values)) {
        if (value === undefined || option in COMMON_OPTIONS || sub.options?.includes(option) === true) continue
        const takers = table.filter(s => s.options?.includes(option) === true).map(s => s.name)
        throw new UsageError(`--${option} is not an option of molt ${init.name} ${sub.name}${takers.length > 0 ? ` (it is for ${listed(takers)})` : ''} ${see}`)
      }
      return sub.run(context, rest)
    }
  }
}

function helpRows (command: string, sub: Subcommand): string[] {
  const usage = `molt ${command} ${sub.name}${sub.usage != null ? ` ${sub.usage}` : ''}`
  const summary = typeof sub.summary === 'string' ? [sub.summary] : sub.summary
  const indent = ' '.repeat(USAGE_WIDTH)
  if (usage.length < USAGE_WIDTH - 1) return [usage.padEnd(USAGE_WIDTH) + summary[0], ...summary.slice(1).map(line => indent + line)]
  return [usage, ...summary.map(line => indent + line)]
}

/** `a, b or c` */
function listed (names: string[]): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1) as string}`
}
