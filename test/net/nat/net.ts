import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CLI, RunningCli } from '../../support/cli.js'
import { completion } from '../../support/process.js'

/**
 * The NAT topology of nat.test.ts as objects: namespaces made by topology.sh,
 * processes started inside them with `ip netns exec`, and a driver per LAN
 * namespace that talks to the agents' local APIs (127.0.0.1 of that namespace).
 *
 * Safety: the test process itself (default namespace) only spawns; every
 * molt process and every dial runs inside a namespace of this run. Processes
 * get PR_SET_PDEATHSIG=SIGKILL (setpriv), so they die with the test worker even
 * if it is killed; namespaces left by a killed run are swept by the next one.
 */
export const TOPOLOGY = fileURLToPath(new URL('./topology.sh', import.meta.url))
/** The molt CLI the processes run: the build of this checkout, or NAT_CLI (another build, e.g. to check a fix) */
export const MOLT_CLI = process.env.NAT_CLI ?? CLI
export const DRIVER = fileURLToPath(new URL('./driver.mjs', import.meta.url))
const PREFIX = 'moltnat'
const NETNS_DIR = '/var/run/netns'

export const NS = ['la', 'ra', 'wan', 'rb', 'lb'] as const
export type NsName = typeof NS[number]

/** Throws, with what is missing, when this machine cannot build the topology */
export function assertTopologyTools (): void {
  const missing: string[] = []
  for (const tool of ['ip', 'iptables', 'setpriv']) {
    const found = spawnSync('sh', ['-c', `PATH="/usr/sbin:/sbin:$PATH" command -v ${tool}`], { encoding: 'utf8' })
    if (found.status !== 0) missing.push(tool)
  }
  if (missing.length > 0) {
    throw new Error(`The NAT tests need ${missing.join(', ')} (Debian: iproute2, iptables, util-linux) and root: they build network namespaces, and refuse to pass without running.`)
  }
  if (process.getuid?.() !== 0) throw new Error('The NAT tests must run as root (ip netns, iptables); CI runs them as root.')
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err.code !== 'ESRCH'
  }
}

/** Remove namespaces (and data dirs) of earlier runs whose test process is gone (a run killed with SIGKILL cannot clean up) */
export function sweepStale (): string[] {
  if (!existsSync(NETNS_DIR)) return []
  const tags = new Set<string>()
  for (const name of readdirSync(NETNS_DIR)) {
    const match = new RegExp(`^(${PREFIX}(\\d+)x[a-z0-9]+)-(${NS.join('|')})$`).exec(name)
    if (match == null) continue
    if (!alive(Number(match[2]))) tags.add(match[1])
  }
  for (const tag of tags) spawnSync(TOPOLOGY, ['down', tag], { stdio: 'ignore' })
  // and their data dirs (molt-nat-<pid>-XXXXXX in the temp dir)
  for (const name of readdirSync(tmpdir())) {
    const match = /^molt-nat-(\d+)-[A-Za-z0-9]{6}$/.exec(name)
    if (match != null && !alive(Number(match[1]))) rmSync(join(tmpdir(), name), { recursive: true, force: true })
  }
  return [...tags]
}

/** A process in a namespace, read line by line */
export interface Spawned extends RunningCli {
  ns: NsName
  label: string
}

/** Whether the process has exited */
export function exited (p: { proc: RunningCli }): boolean {
  return p.proc.child.exitCode !== null || p.proc.child.signalCode !== null
}

/** The namespaces of one run and the processes started in them */
export class NatNetwork {
  readonly tag = `${PREFIX}${process.pid}x${Math.random().toString(36).slice(2, 8)}`
  private readonly children = new Set<ChildProcess>()
  private isUp = false
  private readonly onExit = (): void => {
    const error = this.downSync()
    if (error != null) process.stderr.write(`${error}\n`)
    rmSync(this.root, { recursive: true, force: true })
  }

  /** SIGINT/SIGTERM of the test worker (Ctrl-C, a killed CI job): clean up, then die as asked */
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.onExit()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }

  constructor (readonly root: string) {}

  ns (name: NsName): string {
    return `${this.tag}-${name}`
  }

  async up (): Promise<void> {
    // from here on, any way out of the process removes the namespaces (SIGKILL: the next run sweeps them)
    process.once('exit', this.onExit)
    process.once('SIGINT', this.onSignal)
    process.once('SIGTERM', this.onSignal)
    this.isUp = true
    const result = spawnSync(TOPOLOGY, ['up', this.tag], { encoding: 'utf8', timeout: 30_000 })
    if (result.status !== 0) {
      throw new Error(`could not build the NAT topology (network namespaces, veth, iptables; root needed): ${result.error?.message ?? ''}${result.stderr.trim()} (exit ${String(result.status ?? result.signal)})`)
    }
  }

  /** Kill everything started, remove the namespaces (and their veths, bridge, iptables rules) */
  async down (): Promise<void> {
    const exits = [...this.children].map(async child => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
      child.once('close', () => { resolve() })
      child.kill('SIGKILL')
    }))
    await Promise.race([Promise.all(exits), new Promise(resolve => setTimeout(resolve, 5000))])
    const error = this.downSync()
    if (error != null) throw new Error(error)
  }

  /** Synchronous, so it also runs in an 'exit' handler; returns what went wrong, if anything */
  private downSync (): string | undefined {
    for (const child of this.children) child.kill('SIGKILL')
    if (!this.isUp) return undefined
    const result = spawnSync(TOPOLOGY, ['down', this.tag], { encoding: 'utf8', timeout: 30_000 })
    if (result.status !== 0) return `could not remove the namespaces of ${this.tag}: ${result.error?.message ?? ''}${result.stderr ?? ''}`
    this.isUp = false
    process.removeListener('exit', this.onExit)
    process.removeListener('SIGINT', this.onSignal)
    process.removeListener('SIGTERM', this.onSignal)
    return undefined
  }

  /** The namespaces of this run that exist now */
  existing (): string[] {
    return existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR).filter(name => name.startsWith(`${this.tag}-`)) : []
  }

  private command (ns: NsName, argv: string[]): [string, string[]] {
    // setpriv: the process is SIGKILLed when the test worker dies, whatever way it dies
    return ['ip', ['netns', 'exec', this.ns(ns), 'setpriv', '--pdeathsig', 'KILL', '--', process.execPath, ...argv]]
  }

  env (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const vars: NodeJS.ProcessEnv = { ...process.env, MOLT_HOME: join(this.root, 'home'), PATH: `/usr/sbin:/sbin:${process.env.PATH ?? ''}`, ...extra }
    if (extra.DEBUG == null) delete vars.DEBUG
    return vars
  }

  /** Start `node <argv>` in a namespace */
  start (ns: NsName, argv: string[], label: string, env: Record<string, string> = {}): Spawned {
    const [cmd, args] = this.command(ns, argv)
    const child = spawn(cmd, args, { env: this.env(env), stdio: ['pipe', 'pipe', 'pipe'] })
    this.children.add(child)
    child.once('close', () => { this.children.delete(child) })
    return Object.assign(new RunningCli(child), { ns, label })
  }

  /** `molt <args>` in a namespace, to completion */
  async molt (ns: NsName, args: string[], timeoutMs = 30_000): Promise<{ code: number | null, stdout: string, stderr: string, json: any, ms: number }> {
    const started = performance.now()
    const [cmd, argv] = this.command(ns, [MOLT_CLI, ...args])
    const child = spawn(cmd, argv, { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] })
    this.children.add(child)
    const { code, stdout, stderr } = await completion(child, timeoutMs)
    this.children.delete(child)
    let json: any
    try {
      json = JSON.parse(stdout.trim().split('\n').at(-1) ?? '')
    } catch {}
    return { code, stdout, stderr, json, ms: Math.round(performance.now() - started) }
  }
}

export interface Listening {
  event: 'listening'
  peerId: string
  addresses: string[]
  apiPort?: number
  [key: string]: unknown
}

/** A `molt agent` or `molt relay` process in a namespace */
export interface MoltProcess {
  proc: Spawned
  /** The molt arguments it was started with (without --json --data-dir) */
  args: string[]
  dataDir: string
  listening: Listening
  /** ms from spawn to the listening line */
  startMs: number
  api?: { port: number, token: string }
}

/** Start `molt <args> --json --data-dir <dataDir>` and wait (up to startTimeoutMs) for its listening line */
export async function startMolt (net: NatNetwork, ns: NsName, label: string, dataDir: string, args: string[], env: Record<string, string> = {}, startTimeoutMs = 20_000): Promise<MoltProcess> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const started = performance.now()
  const proc = net.start(ns, [MOLT_CLI, ...args, '--json', '--data-dir', dataDir], label, env)
  let first: string
  try {
    first = await proc.nextLine(startTimeoutMs)
  } catch (err: any) {
    throw new Error(`${label} (molt ${args.join(' ')}) printed no listening line: ${err.message}`)
  }
  let listening: Listening
  try {
    listening = JSON.parse(first)
  } catch {
    throw new Error(`${label} printed ${first}; stderr ${proc.stderr}`)
  }
  if (listening.event !== 'listening') throw new Error(`${label} printed ${first}`)
  const result: MoltProcess = { proc, args, dataDir, listening, startMs: Math.round(performance.now() - started) }
  if (typeof listening.apiPort === 'number') {
    result.api = { port: listening.apiPort, token: (await readFile(join(dataDir, 'api-token'), 'utf8')).trim() }
  }
  return result
}

/** The JSON-lines RPC to driver.mjs running in a LAN namespace */
export class Driver {
  private nextId = 1
  private readonly waiting = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void, onEvent?: (e: any) => void }>()
  private readonly ready: Promise<void>
  stderr = ''

  constructor (readonly child: ChildProcess, readonly label: string) {
    let markReady: () => void = () => {}
    this.ready = new Promise((resolve) => { markReady = resolve })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: any
      try {
        msg = JSON.parse(line)
      } catch {
        return
      }
      if (msg.event === 'ready' && msg.id == null) { markReady(); return }
      const entry = this.waiting.get(msg.id)
      if (entry == null) return
      if (msg.event != null) { entry.onEvent?.(msg); return }
      this.waiting.delete(msg.id)
      if (msg.ok === true) entry.resolve(msg.result)
      else entry.reject(new Error(`${label}: ${String(msg.error)}`))
    })
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    child.once('close', () => {
      for (const entry of this.waiting.values()) entry.reject(new Error(`driver ${label} exited; stderr: ${this.stderr}`))
      this.waiting.clear()
    })
  }

  static start (net: NatNetwork, ns: NsName, label: string): Driver {
    const proc = net.start(ns, [DRIVER], label)
    // RunningCli reads stdout line by line too; the driver keeps its own reader
    return new Driver(proc.child, label)
  }

  async call<T = any> (cmd: string, args: Record<string, unknown>, onEvent?: (event: any) => void): Promise<T> {
    await this.ready
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, onEvent })
      this.child.stdin!.write(JSON.stringify({ id, cmd, ...args }) + '\n')
    })
  }

  close (): void {
    this.child.stdin?.end()
  }
}

/** The /p2p-circuit addresses of `addresses` through `relay` */
export function circuitVia (addresses: string[], relay: string): string[] {
  return addresses.filter(a => a.includes(`/p2p/${relay}/p2p-circuit`))
}
