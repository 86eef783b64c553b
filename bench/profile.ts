/**
 * CPU profiles of the measured window only (MOLT_BENCH_PROFILE=<dir>): this
 * process through node:inspector, another process through its inspector port
 * (started with --inspect=127.0.0.1:0), so start-up and warm-up stay out of
 * the profile. Loopback only.
 */
import { Session } from 'node:inspector/promises'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { WebSocket } from 'ws'

export const profileDir = (): string | undefined => process.env.MOLT_BENCH_PROFILE

/** Node flags for a child to be profiled: an inspector on a free loopback port */
export const inspectFlags = (): string[] => profileDir() !== undefined ? ['--inspect=127.0.0.1:0'] : []

/** The child's inspector URL from its stderr ("Debugger listening on ws://…"); other lines pass through */
export async function inspectorUrl (stderr: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (chunk: Buffer): void => {
      process.stderr.write(chunk)
      text += chunk.toString()
      const match = /Debugger listening on (ws:\/\/\S+)/.exec(text)
      if (match != null) resolve(match[1])
    }
    stderr.on('data', onData)
    stderr.once('end', () => { reject(new Error('no inspector URL on the child\'s stderr')) })
  })
}

interface Profiler { stop: () => Promise<void> }

/** Start profiling this process; stop() writes `<dir>/<name>.cpuprofile` */
export async function profileSelf (name: string): Promise<Profiler> {
  const dir = profileDir()
  if (dir === undefined) return { stop: async () => {} }
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 100 })
  await session.post('Profiler.start')
  return {
    stop: async () => {
      const { profile } = await session.post('Profiler.stop')
      session.disconnect()
      await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile))
    }
  }
}

/** Start profiling the process behind inspector `url`; stop() writes `<dir>/<name>.cpuprofile` */
export async function profileRemote (url: string | undefined, name: string): Promise<Profiler> {
  const dir = profileDir()
  if (dir === undefined || url === undefined) return { stop: async () => {} }
  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  let id = 0
  const waiting = new Map<number, (result: any) => void>()
  ws.on('message', (data) => {
    const reply = JSON.parse(data.toString()) as { id?: number, result?: unknown }
    if (reply.id !== undefined) waiting.get(reply.id)?.(reply.result)
  })
  const post = async (method: string, params: Record<string, unknown> = {}): Promise<any> => new Promise((resolve) => {
    waiting.set(++id, resolve)
    ws.send(JSON.stringify({ id, method, params }))
  })
  await post('Profiler.enable')
  await post('Profiler.setSamplingInterval', { interval: 100 })
  await post('Profiler.start')
  return {
    stop: async () => {
      const { profile } = await post('Profiler.stop')
      ws.close()
      await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile))
    }
  }
}
