import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Private network namespaces for tests that run mDNS. mDNS multicasts on every
 * interface, so it may only ever run inside `unshare -n` with loopback (multicast
 * on, a 224.0.0.0/4 route) as the only interface: nothing leaves the namespace.
 */

/** Shell prelude run inside the fresh namespace before exec'ing the command */
export const NAMESPACE_SETUP = 'set -e; ip link set lo up; ip link set lo multicast on; ip route add 224.0.0.0/4 dev lo'

/**
 * Throws with the reason when this machine cannot make a network namespace.
 * LAN tests must fail loudly then, never skip: CI runs them as root.
 */
export function assertNamespacesWork (): void {
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', NAMESPACE_SETUP], { encoding: 'utf8' })
  if (probe.error != null || probe.status !== 0) {
    const why = probe.error != null ? probe.error.message : (probe.stderr.trim() || `exit ${String(probe.status ?? probe.signal)}`)
    throw new Error(
      `The LAN (mDNS) tests need a private network namespace: \`unshare -n\` with \`ip\` must work here (root or CAP_SYS_ADMIN, util-linux and iproute2 installed), and it does not: ${why}. ` +
      'These tests refuse to run mDNS in the shared namespace, and refuse to pass without running.'
    )
  }
}

export interface NamespaceRun<T> {
  code: number | null
  signal: NodeJS.Signals | null
  /** The last stdout line, parsed */
  result: T
  stdout: string
  stderr: string
  ms: number
}

export interface NamespaceOptions {
  /** Namespaces to unshare, e.g. `['-m', '-n']` to also mount privately. @default ['-n'] */
  unshare?: string[]
  /** Shell run inside before the script (after NAMESPACE_SETUP), e.g. mounts */
  setup?: string
}

/**
 * Run `process.execPath <script> <args>` in a fresh namespace and wait for it.
 * The child leads its own process group: when it exits, or on timeout, the
 * whole group (every process it started) is killed, so nothing outlives the run.
 */
export async function runInNamespace<T = any> (script: string, args: string[], timeoutMs: number, options: NamespaceOptions = {}): Promise<NamespaceRun<T>> {
  const started = performance.now()
  const setup = options.setup != null ? `${NAMESPACE_SETUP}; ${options.setup}` : NAMESPACE_SETUP
  const child = spawn('unshare', [...(options.unshare ?? ['-n']), 'sh', '-c', `${setup}; exec "$@"`, 'sh', process.execPath, script, ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const pgid = child.pid
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const killGroup = (): void => {
    if (pgid == null) return
    try {
      process.kill(-pgid, 'SIGKILL')
    } catch {}
  }
  const timer = setTimeout(killGroup, timeoutMs)
  // the leader has exited: take down anything it left behind, at once
  child.once('exit', killGroup)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c, s) => { resolve([c, s]) })
  }).finally(() => { clearTimeout(timer) })
  const last = stdout.trim().split('\n').at(-1) ?? ''
  let result: T
  try {
    result = JSON.parse(last)
  } catch {
    throw new Error(`namespace run printed no JSON result (exit ${String(code ?? signal)}); stdout: ${stdout}; stderr: ${stderr}`)
  }
  return { code, signal, result, stdout, stderr, ms: Math.round(performance.now() - started) }
}

/** A temp dir removed by the returned cleanup */
export async function tempRoot (prefix: string): Promise<{ dir: string, remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return { dir, remove: async () => { await rm(dir, { recursive: true, force: true }) } }
}
