import type { ChildProcessByStdio } from 'node:child_process'
import type { Readable } from 'node:stream'

export interface Completed {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Collect a spawned process's output until it exits; SIGKILL it after `timeoutMs` */
export async function completion (child: ChildProcessByStdio<null, Readable, Readable>, timeoutMs: number): Promise<Completed> {
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.once('close', (c, s) => { resolve([c, s]) })
  })
  clearTimeout(timer)
  return { code, signal, stdout, stderr }
}
