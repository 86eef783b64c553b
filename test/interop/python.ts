import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'vitest'

/*
 * Runs test/interop/moltspeak_ref.py, an independent MoltSpeak signer and
 * verifier (standard-library json + PyNaCl), with the Debian Python that has
 * python3-nacl (.ci/run installs it). Under CI=true a missing PyNaCl fails the
 * suite; locally the suite is skipped with one line saying why.
 */

/** The Debian Python with python3-nacl; MOLT_TEST_PYTHON overrides it (e.g. to check the missing-PyNaCl paths) */
export const PYTHON = process.env.MOLT_TEST_PYTHON ?? '/usr/bin/python3'
const SCRIPT = fileURLToPath(new URL('./moltspeak_ref.py', import.meta.url))

function probe (): string | undefined {
  const run = spawnSync(PYTHON, ['-c', 'import nacl.signing'], { encoding: 'utf8' })
  if (run.error != null) return `${PYTHON} cannot run: ${run.error.message}`
  if (run.status !== 0) return `${PYTHON} has no PyNaCl (apt-get install python3-nacl)`
  return undefined
}

export const pythonMissing = probe()

/** `describe`, or, without PyNaCl: a failing test under CI=true, a one-line skip locally */
export function describeWithPython (name: string, body: () => void): void {
  if (pythonMissing === undefined) {
    describe(name, body)
  } else if (process.env.CI === 'true') {
    describe(name, () => { it('needs PyNaCl', () => { throw new Error(pythonMissing) }) })
  } else {
    console.warn(`skipping "${name}": ${pythonMissing}`)
    describe.skip(`${name} (skipped: ${pythonMissing})`, () => { it('needs PyNaCl', () => {}) })
  }
}

export interface PyVerdict {
  ok: boolean
  signed: boolean
  code?: string
  reason?: string
  canonical?: string
}

/** One request to the Python program (one process per batch), its JSON answer */
export async function python<T> (request: Record<string, unknown>): Promise<T> {
  const child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  child.stdin.end(JSON.stringify(request))
  const code = await exited
  if (code !== 0) throw new Error(`moltspeak_ref.py exited ${code}: ${Buffer.concat(err).toString()}`)
  return JSON.parse(Buffer.concat(out).toString('utf8')) as T
}

export async function pySign (seed: Uint8Array, texts: string[]): Promise<string[]> {
  return python<string[]>({ op: 'sign', seed: Buffer.from(seed).toString('hex'), texts })
}

export async function pyVerify (texts: string[]): Promise<PyVerdict[]> {
  return python<PyVerdict[]>({ op: 'verify', texts })
}

export async function pyPublicKey (seed: Uint8Array): Promise<string> {
  return python<string>({ op: 'public_key', seed: Buffer.from(seed).toString('hex') })
}
