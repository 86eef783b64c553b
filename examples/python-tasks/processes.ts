/** Child processes of the Python examples: wait for a line, start a `molt agent`, stop by PID */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

/** Resolve with the first stdout line `accept` returns a value for; reject if the process exits first */
export async function waitForLine<T> (child: ChildProcess, name: string, accept: (line: string) => T | undefined, timeoutMs = 20_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    const timer = setTimeout(() => { finish(); reject(new Error(`${name} did not start within ${timeoutMs} ms`)) }, timeoutMs)
    const onExit = (code: number | null): void => { finish(); reject(new Error(`${name} exited with code ${code}`)) }
    const onLine = (line: string): void => {
      const value = accept(line)
      if (value !== undefined) { finish(); resolve(value) }
    }
    const finish = (): void => {
      clearTimeout(timer)
      lines.off('line', onLine)
      child.off('exit', onExit)
    }
    lines.on('line', onLine)
    child.once('exit', onExit)
  })
}

/** SIGTERM, then SIGKILL after 5 s, by the child's PID */
export async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
  await exited
  clearTimeout(timer)
}

export interface Listening { peerId: string, addresses: string[], apiPort: number }

/** `molt agent` on 127.0.0.1 (no mDNS) with its own data dir; resolves once it listens */
export async function startAgent (cli: string, dataDir: string, children: ChildProcess[]): Promise<Listening> {
  const agent = spawn(process.execPath, [cli, 'agent', '--data-dir', dataDir, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--json'], {
    env: { ...process.env, MOLT_HOME: dataDir },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  children.push(agent)
  // a deadline for a loaded machine, not a speed requirement
  return waitForLine(agent, 'molt agent', (line) => {
    try {
      const value = JSON.parse(line) as Listening & { event?: string }
      return value.event === 'listening' ? value : undefined
    } catch {
      return undefined
    }
  }, 60_000)
}

/** The agent's TCP address on 127.0.0.1, with /p2p/<id> */
export function tcpAddress (listening: Listening): string {
  const address = listening.addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws')) ?? listening.addresses[0]
  return address.includes('/p2p/') ? address : `${address}/p2p/${listening.peerId}`
}
