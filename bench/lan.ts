/**
 * LAN benchmark: the time from starting two `molt agent --echo` processes in a
 * fresh private network namespace to their first delivered query → respond,
 * with no configuration: they find each other by mDNS (`_molt._udp.local`).
 *
 * mDNS multicasts on every interface, so each run happens inside `unshare -n`
 * whose only interface is loopback (multicast on, a 224.0.0.0/4 route); the
 * worker refuses to start agents if it sees any other interface. Needs root
 * (or CAP_SYS_ADMIN) and iproute2; without them the benchmark fails, it does
 * not fall back to the shared namespace.
 *
 * One run (inside the namespace): spawn A and B at the same moment (t0); as
 * soon as A's API answers, poll A's GET /v1/peers every 20 ms; when B appears,
 * A sends `query` to B's PeerId alone (POST /v1/requests); the sample is t0 →
 * B's `respond` back at A. Agent start-up (Node, libp2p, LevelDB, key) counts.
 */
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { summarize } from './stats.js'

export interface LanBenchOptions {
  /** Fresh namespaces, one sample each */
  runs: number
  log: (line: string) => void
  /** Longest one run may take before it counts as failed. @default 20000 */
  runTimeoutMs?: number
}

export interface LanBenchResult {
  /** ms from spawning both agents to A holding B's reply, one per run */
  samples: number[]
  p50: number
  p99: number
  mean: number
  /** Where the time goes, per run: both agents printed their listening line / B appeared in A's peers */
  phases: { listening: number[], discovered: number[] }
}

/** What the worker prints: one JSON line */
interface RunResult {
  ok: boolean
  error?: string
  /** spawn → both agents listening */
  listeningMs?: number
  /** spawn → B in A's peers */
  discoveredMs?: number
  /** spawn → reply at A */
  deliveredMs?: number
  requests?: number
}

const WORKER_FLAG = '--lan-bench-worker'
const POLL_MS = 20
const NAMESPACE_SETUP = 'set -e; ip link set lo up; ip link set lo multicast on; ip route add 224.0.0.0/4 dev lo'
const here = fileURLToPath(import.meta.url)
/** dist/bench/lan.js → dist/src/cli/main.js */
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url))

export async function runLanBench (options: LanBenchOptions): Promise<LanBenchResult> {
  assertNamespacesWork()
  const samples: number[] = []
  const listening: number[] = []
  const discovered: number[] = []
  for (let run = 1; run <= options.runs; run++) {
    const root = await mkdtemp(join(tmpdir(), 'molt-lan-bench-'))
    try {
      const result = await runInNamespace(root, options.runTimeoutMs ?? 20_000)
      if (!result.ok || result.deliveredMs == null) throw new Error(`LAN bench run ${run} failed: ${result.error ?? 'no result'}`)
      samples.push(result.deliveredMs)
      listening.push(result.listeningMs ?? NaN)
      discovered.push(result.discoveredMs ?? NaN)
      options.log(`lan run ${run}/${options.runs}: first reply after ${result.deliveredMs} ms (listening ${result.listeningMs} ms, B in A's peers ${result.discoveredMs} ms)`)
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  }
  const { p50, p99, mean } = summarize(samples)
  return { samples, p50, p99, mean, phases: { listening, discovered } }
}

function assertNamespacesWork (): void {
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', NAMESPACE_SETUP], { encoding: 'utf8' })
  if (probe.error != null || probe.status !== 0) {
    const why = probe.error != null ? probe.error.message : (probe.stderr.trim() || `exit ${String(probe.status ?? probe.signal)}`)
    throw new Error(`The LAN benchmark needs \`unshare -n\` and \`ip\` (root or CAP_SYS_ADMIN): ${why}. It never runs mDNS outside a private namespace.`)
  }
}

/** One run: this file in worker mode, inside a fresh namespace; the whole process group is killed afterwards */
async function runInNamespace (root: string, timeoutMs: number): Promise<RunResult> {
  const child = spawn('unshare', ['-n', 'sh', '-c', `${NAMESPACE_SETUP}; exec "$@"`, 'sh', process.execPath, here, WORKER_FLAG, root], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const killGroup = (): void => {
    try {
      if (child.pid != null) process.kill(-child.pid, 'SIGKILL')
    } catch {}
  }
  const timer = setTimeout(killGroup, timeoutMs + 5000)
  child.once('exit', killGroup)
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c) => { resolve(c) })
  }).finally(() => { clearTimeout(timer) })
  try {
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '')
  } catch {
    return { ok: false, error: `worker exited ${String(code)} without a result; stderr: ${stderr.slice(-2000)}` }
  }
}

// ---- worker: runs inside the namespace ----

interface Agent {
  child: ChildProcess
  dataDir: string
  listening: Promise<{ peerId: string, apiPort: number }>
}

function startAgent (root: string, name: string): Agent {
  const dataDir = join(root, name)
  const env: NodeJS.ProcessEnv = { ...process.env, MOLT_HOME: join(root, 'home') }
  delete env.DEBUG
  const child = spawn(process.execPath, [CLI, 'agent', '--echo', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--json'], {
    env, stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const listening = new Promise<{ peerId: string, apiPort: number }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once('line', (line) => {
      try {
        const value = JSON.parse(line)
        if (value.event !== 'listening' || value.mdns !== true) throw new Error(`unexpected first line ${line}`)
        resolve(value)
      } catch (err) {
        reject(err)
      }
      // keep draining: message lines follow
      lines.on('line', () => {})
    })
    child.once('close', (code) => { reject(new Error(`agent ${name} exited (${String(code)}) before listening: ${stderr.slice(-1000)}`)) })
  })
  listening.catch(() => {})
  return { child, dataDir, listening }
}

function checkNamespace (): void {
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)
  const names = links.map(line => line.split(':')[1].trim().split('@')[0])
  if (names.length !== 1 || names[0] !== 'lo') throw new Error(`refusing to run mDNS: interfaces [${names.join(', ')}], expected only lo`)
  const routes = execFileSync('ip', ['route', 'show'], { encoding: 'utf8' })
  if (!/^224\.0\.0\.0\/4 dev lo\b/m.test(routes)) throw new Error('no multicast route on lo')
}

async function worker (root: string): Promise<RunResult> {
  checkNamespace()
  await mkdir(join(root, 'home'), { recursive: true, mode: 0o700 })
  const deadline = AbortSignal.timeout(20_000)
  const t0 = performance.now()
  const since = (): number => Math.round(performance.now() - t0)
  const a = startAgent(root, 'a')
  const b = startAgent(root, 'b')
  try {
    const [infoA, infoB] = await Promise.all([a.listening, b.listening])
    const listeningMs = since()
    const token = (await readFile(join(a.dataDir, 'api-token'), 'utf8')).trim()
    const api = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, json: any }> => {
      const res = await fetch(`http://127.0.0.1:${infoA.apiPort}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: deadline
      })
      return { status: res.status, json: await res.json() }
    }
    while (!(await api('GET', '/v1/peers')).json.peers.some((p: { peerId: string }) => p.peerId === infoB.peerId)) {
      await sleep(POLL_MS, undefined, { signal: deadline })
    }
    const discoveredMs = since()
    let requests = 0
    for (;;) {
      requests++
      const { status, json } = await api('POST', '/v1/requests', {
        to: infoB.peerId,
        message: { op: 'query', p: { domain: 'bench', intent: 'lan' } },
        timeoutMs: 10_000
      })
      if (status === 200 && json.reply?.op === 'respond') break
      // B was seen before it could be reached: try again, the clock keeps running
      if (deadline.aborted) throw new Error(`no reply: HTTP ${status} ${JSON.stringify(json)}`)
      await sleep(POLL_MS, undefined, { signal: deadline })
    }
    return { ok: true, listeningMs, discoveredMs, deliveredMs: since(), requests }
  } finally {
    await Promise.all([a, b].map(async ({ child }) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once('exit', () => { resolve() })
      child.kill('SIGTERM')
      setTimeout(() => { child.kill('SIGKILL') }, 2000).unref()
    })))
  }
}

if (process.argv[2] === WORKER_FLAG && process.argv[1] != null && resolve(process.argv[1]) === here) {
  const root = process.argv[3]
  worker(root).then((result) => {
    process.stdout.write(JSON.stringify(result) + '\n')
    process.exit(0)
  }, (err: Error) => {
    process.stdout.write(JSON.stringify({ ok: false, error: err.message } satisfies RunResult) + '\n')
    process.exit(1)
  })
}
