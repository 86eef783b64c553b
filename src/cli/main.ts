#!/usr/bin/env node
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { resolveDataDir } from '../config/index.js'
import { ApiError } from '../api/errors.js'
import { toHttpError } from '../api/error-status.js'
import { commandHelp, mainHelp, parseCommandArgs, stringFlag, booleanFlag } from './args.js'
import { InterruptedError, UsageError } from './errors.js'
import { NoAgentError } from './agent-here.js'
import { Output } from './output.js'
import { COMMANDS } from './commands/index.js'
import { unsupportedNode } from './node-version.js'

/** Where a command writes, and what interrupts it when it runs inside another program */
export interface MainIo {
  stdout?: NodeJS.WritableStream
  stderr?: NodeJS.WritableStream
  /**
   * Interrupts the command as SIGINT/SIGTERM do (`molt agent` stops and
   * returns 0). When given, main() leaves the process's signals alone: the
   * embedding program owns them.
   */
  signal?: AbortSignal
}

/** Exit codes: 0 ok, 1 failure, 2 bad command line, 130 interrupted; molt send/receipt add 75 (queued / not yet: SEND_EXIT) */
export async function main (argv: string[], io: MainIo = {}): Promise<number> {
  const json = argv.includes('--json')
  const out = new Output(json, io.stdout, io.stderr)
  let [name, ...rest] = argv
  // `molt help <command>` is `molt <command> --help`
  if (name === 'help' && rest.length > 0) [name, rest] = [rest[0], ['--help', ...rest.slice(1)]]
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out.text(mainHelp(COMMANDS))
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-V') {
    // loaded here only: `molt --help` stays free of libp2p (test/unit/cli-startup.test.ts)
    const { moltVersion } = await import('../version.js')
    out.result(`molt ${moltVersion()}`, { version: moltVersion(), node: process.versions.node })
    return 0
  }
  const entry = COMMANDS.find(c => c.name === name)

  // the first signal asks the command to finish; a second one does not wait
  const controller = new AbortController()
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(130)
    controller.abort(new InterruptedError('interrupted'))
  }
  const onEmbedderAbort = (): void => { controller.abort(new InterruptedError('interrupted')) }
  if (io.signal != null) {
    if (io.signal.aborted) onEmbedderAbort()
    else io.signal.addEventListener('abort', onEmbedderAbort, { once: true })
  } else {
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  }

  try {
    if (entry == null) {
      throw new UsageError(name.startsWith('-')
        ? `options go after the command: molt <command> ${name} (see molt --help)`
        : `unknown command "${name}" (see molt --help)`)
    }
    const command = await entry.load()
    const args = parseCommandArgs(command.spec, rest)
    if (booleanFlag(args.values, 'help')) {
      out.text(commandHelp(command.spec, entry.summary))
      return 0
    }
    const dataDir = resolveDataDir(stringFlag(args.values, 'data-dir'))
    return await command.run({ args, dataDir, out, signal: controller.signal }) ?? 0
  } catch (err: any) {
    if (err instanceof UsageError) {
      out.error('E_INVALID_PARAM', err.message)
      return 2
    }
    if (controller.signal.aborted) {
      out.error('E_INTERNAL', 'interrupted')
      return 130
    }
    if (err instanceof NoAgentError) {
      out.error(err.code, err.message)
      return 1
    }
    const { code, message } = err instanceof ApiError ? err : toHttpError(err)
    out.error(code, oneLine(message, err))
    return 1
  } finally {
    // batched log lines (--log-format json, MOLT_LOG_*) are written before main() returns, not up to LOG_BATCH_INTERVAL after
    await out.flush()
    io.signal?.removeEventListener('abort', onEmbedderAbort)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** Error text on one line, with the reasons an AggregateError hides */
function oneLine (message: string, err: any): string {
  const inner = Array.isArray(err?.errors) ? err.errors.map((e: any) => e?.message).filter(Boolean) : []
  const text = inner.length > 0 ? `${message}: ${inner.join('; ')}` : message
  return text.replace(/\s*\n\s*/g, ' ')
}

/** True when this file is the program (`molt`), false when a test imports main() to drive it in-process */
function isProgram (): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isProgram()) {
  const out = new Output(false)
  const tooOld = unsupportedNode(process.versions.node)
  if (tooOld !== undefined) {
    out.error('E_INTERNAL', tooOld)
    process.exitCode = 1
  } else main(process.argv.slice(2)).then(async (code) => {
    await out.flush()
    // a stopped node may leave idle timers behind; the command is done
    process.exit(code)
  }, async (err) => {
    out.error('E_INTERNAL', `unexpected failure: ${err?.stack ?? err}`)
    await out.flush()
    process.exit(1)
  })
}
