import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Writable } from 'node:stream'
import { completion } from './process.js'

/** The built CLI: the tests run after `npm run build` (pretest) */
export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url))

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * `molt agent` runs mDNS by default, which multicasts on every interface. The
 * sandbox runs in the default network namespace, so every agent it starts gets
 * --no-mdns, whatever the test asked: LAN tests live in test/net, inside
 * private namespaces.
 */
export function withoutMdns (args: string[]): string[] {
  if (args[0] !== 'agent' || args.includes('--no-mdns') || args.includes('--help') || args.includes('-h')) return args
  return [...args, '--no-mdns']
}

/** Temp data dirs and child processes, all removed/killed by cleanup() */
export class CliSandbox {
  private readonly dirs: string[] = []
  private readonly children = new Set<ChildProcess>()
  private readonly local = new Set<LocalCli>()
  /** $MOLT_HOME for every child, so a test that forgets --data-dir never touches ~/.molt */
  home?: string

  async dir (): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'molt-cli-test-'))
    this.dirs.push(dir)
    return dir
  }

  private async env (): Promise<NodeJS.ProcessEnv> {
    this.home ??= await this.dir()
    const env: NodeJS.ProcessEnv = { ...process.env, MOLT_HOME: this.home }
    delete env.DEBUG
    return env
  }

  /** Run `molt <args>` to completion */
  async run (args: string[], timeoutMs = 60_000): Promise<CliResult> {
    const child = spawn(process.execPath, [CLI, ...withoutMdns(args)], { env: await this.env(), stdio: ['ignore', 'pipe', 'pipe'] })
    this.children.add(child)
    const result = await completion(child, timeoutMs)
    this.children.delete(child)
    return result
  }

  /**
   * `molt <args>` through the CLI's main() in this process: what `run()` does,
   * without a process start (≈ 2 s of CPU each, most of it loading libp2p).
   * For commands that end by themselves where the process boundary is not what
   * is tested; signals, exit on EPIPE, a `molt agent` that starts need `run()`/`start()`.
   * $MOLT_HOME is this sandbox's home for the call.
   */
  async call (args: string[], timeoutMs = 60_000): Promise<CliResult> {
    const env = await this.env()
    const { main } = await cliMain()
    let stdout = ''
    let stderr = ''
    const sink = (append: (text: string) => void): Writable => new Writable({
      write (chunk: Buffer | string, _encoding, callback) { append(chunk.toString()); callback() }
    })
    const home = process.env.MOLT_HOME
    process.env.MOLT_HOME = env.MOLT_HOME
    let timer: NodeJS.Timeout | undefined
    try {
      const code = await Promise.race([
        main(args, { stdout: sink(text => { stdout += text }), stderr: sink(text => { stderr += text }) }),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { reject(new Error(`molt ${args.join(' ')} did not finish within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`)) }, timeoutMs)
        })
      ])
      return { code, signal: null, stdout, stderr }
    } finally {
      clearTimeout(timer)
      if (home === undefined) delete process.env.MOLT_HOME
      else process.env.MOLT_HOME = home
    }
  }

  /**
   * Start a long-running `molt <args>` through the CLI's main() in this
   * process (`molt agent` where its process is not what is tested: a process
   * start is ≈ 2 s of CPU, most of it loading libp2p). It reads like start()'s
   * RunningCli; stop() interrupts it as SIGTERM would. Signals, a closed
   * stdout, kill -9 and DEBUG output need start().
   */
  async startLocal (args: string[]): Promise<LocalCli> {
    const { main } = await cliMain()
    const cli = new LocalCli((io) => main(withoutMdns(args), io))
    this.local.add(cli)
    void cli.exited.then(() => { this.local.delete(cli) })
    return cli
  }

  /** startLocal() of `molt agent --json` on loopback, once it printed its listening line */
  async localAgent (dataDir: string, extra: string[] = []): Promise<LocalAgent> {
    const cli = await this.startLocal(['agent', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--json', ...extra])
    return Object.assign(cli, { listening: await listeningLine(cli), dataDir })
  }

  /** Start a long-running `molt <args>` (agent, inbox --follow) */
  async start (args: string[]): Promise<RunningCli> {
    const child = spawn(process.execPath, [CLI, ...withoutMdns(args)], { env: await this.env(), stdio: ['ignore', 'pipe', 'pipe'] })
    this.children.add(child)
    child.once('close', () => { this.children.delete(child) })
    return new RunningCli(child)
  }

  /** Start `molt agent --json` on loopback and wait for its listening line */
  async agent (dataDir: string, extra: string[] = []): Promise<RunningAgent> {
    const cli = await this.start(['agent', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--json', ...extra])
    return Object.assign(cli, { listening: await listeningLine(cli), dataDir })
  }

  async cleanup (): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL')
    await Promise.all([...this.local].map(async cli => cli.stop()))
    await Promise.all(this.dirs.map(async dir => rm(dir, { recursive: true, force: true })))
  }
}

/** `molt agent --json`'s first line, parsed */
async function listeningLine (cli: LineReader): Promise<Listening> {
  // a deadline for a start on a busy machine, not a speed requirement
  const first = await cli.nextLine(60_000)
  let listening: Listening
  try {
    listening = JSON.parse(first)
  } catch {
    throw new Error(`agent did not print a JSON listening line: ${first}\n${cli.stderr}`)
  }
  if (listening.event !== 'listening') throw new Error(`unexpected first line: ${first}`)
  return listening
}

type CliMain = (argv: string[], io: { stdout?: NodeJS.WritableStream, stderr?: NodeJS.WritableStream, signal?: AbortSignal }) => Promise<number>
let loaded: Promise<{ main: CliMain }> | undefined
/** The built CLI's main() (importing it runs nothing), loaded once per test file */
async function cliMain (): Promise<{ main: CliMain }> {
  loaded ??= import(pathToFileURL(CLI).href)
  return loaded
}

export interface Listening {
  event: 'listening'
  peerId: string
  addresses: string[]
  apiPort: number
}

export type RunningAgent = RunningCli & { listening: Listening, dataDir: string }
/** An agent run by startLocal(): `pid` is this process's */
export type LocalAgent = LocalCli & { listening: Listening, dataDir: string }
/** Either kind, for tests that only talk to it (its API, its stdout lines) */
export type AnyAgent = RunningAgent | LocalAgent

type Exit = { code: number | null, signal: NodeJS.Signals | null }

/** A command's stdout read line by line and its stderr as text, from a child process or from main() in this one */
export abstract class LineReader {
  readonly lines: string[] = []
  stderr = ''
  private read = 0
  protected closed = false
  private readonly waiters = new Set<() => void>()
  abstract readonly exited: Promise<Exit>
  /** The process that runs it */
  abstract readonly pid: number | undefined

  abstract stop (signal?: NodeJS.Signals): Promise<Exit>

  protected line (line: string): void {
    this.lines.push(line)
    this.wake()
  }

  protected wake (): void {
    for (const wake of this.waiters) wake()
  }

  /** The next stdout line not yet returned */
  async nextLine (timeoutMs = 30_000): Promise<string> {
    return this.waitFor(() => this.lines.length > this.read ? this.lines[this.read++] : undefined, timeoutMs)
  }

  /** The first JSON stdout line (from the start) that `predicate` accepts */
  async waitForJson<T = any> (predicate: (value: any) => boolean, timeoutMs = 30_000): Promise<T> {
    return this.waitFor(() => {
      for (const line of this.lines) {
        try {
          const value = JSON.parse(line)
          if (predicate(value)) return value
        } catch {}
      }
      return undefined
    }, timeoutMs)
  }

  private async waitFor<T> (check: () => T | undefined, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const wake = (): void => {
        const value = check()
        if (value !== undefined) {
          finish()
          resolve(value)
        } else if (this.closed) {
          finish()
          reject(new Error(`it exited first; stderr: ${this.stderr}`))
        }
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`timed out after ${timeoutMs} ms; stdout: ${this.lines.join('\n')}; stderr: ${this.stderr}`))
      }, timeoutMs)
      const finish = (): void => {
        clearTimeout(timer)
        this.waiters.delete(wake)
      }
      this.waiters.add(wake)
      wake()
    })
  }
}

/** A child process read line by line */
export class RunningCli extends LineReader {
  readonly exited: Promise<Exit>

  constructor (readonly child: ChildProcess) {
    super()
    createInterface({ input: child.stdout! }).on('line', (line) => { this.line(line) })
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    // 'close', not 'exit': every stdout line has been read by then
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.closed = true
        this.wake()
        resolve({ code, signal })
      })
    })
  }

  get pid (): number | undefined {
    return this.child.pid
  }

  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    this.child.kill(signal)
    return this.exited
  }
}

/** The CLI's main() running in this process, read like a RunningCli; stop() interrupts it as SIGTERM would */
export class LocalCli extends LineReader {
  readonly exited: Promise<Exit>
  readonly pid = process.pid
  private readonly controller = new AbortController()
  private partial = ''

  constructor (run: (io: { stdout: Writable, stderr: Writable, signal: AbortSignal }) => Promise<number>) {
    super()
    const stdout = new Writable({
      write: (chunk: Buffer | string, _encoding, callback) => {
        const parts = (this.partial + chunk.toString()).split('\n')
        this.partial = parts.pop() ?? ''
        for (const line of parts) this.line(line)
        callback()
      }
    })
    const stderr = new Writable({
      write: (chunk: Buffer | string, _encoding, callback) => { this.stderr += chunk.toString(); callback() }
    })
    this.exited = run({ stdout, stderr, signal: this.controller.signal })
      .catch((err: Error) => { this.stderr += `${err.stack ?? err.message}\n`; return 1 })
      .then((code) => {
        if (this.partial !== '') this.line(this.partial)
        this.closed = true
        this.wake()
        return { code, signal: null }
      })
  }

  async stop (): Promise<Exit> {
    this.controller.abort()
    return this.exited
  }
}
