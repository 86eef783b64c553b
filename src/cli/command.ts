import type { CommandSpec, ParsedArgs } from './args.js'
import type { Output } from './output.js'

export interface CommandContext {
  args: ParsedArgs
  /** Resolved --data-dir / $MOLT_HOME / ~/.molt */
  dataDir: string
  out: Output
  /** Aborted on SIGINT/SIGTERM */
  signal: AbortSignal
}

export interface Command {
  spec: CommandSpec
  /** Resolves to the exit code (0 when nothing is returned) */
  run(context: CommandContext): Promise<number | void>
}
