import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TestNetwork, addressOf, freePort } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { TaskClaimRefusedError, type MoltNode } from '../../src/index.js'

/*
 * "First agent wins" across a crash: the offerer is a real process, killed
 * with SIGKILL as the first claim reaches it (its decision may or may not be
 * on disk), then restarted on the same data dir and port. Claims in flight
 * are re-sent (outbox, or the claimants' retry of acknowledged but undecided
 * claims); whatever the interleaving, exactly one claimant is granted.
 */

const OFFERER = join(import.meta.dirname, 'tasks-offerer.mjs')
const CLAIMANTS = 10
const ROUNDS = 2

class Offerer {
  readonly lines: string[] = []
  stderr = ''
  readonly child: ChildProcessByStdio<Writable, Readable, Readable>
  readonly exited: Promise<void>
  private readonly waiters = new Set<() => void>()

  constructor (args: string[]) {
    this.child = spawn(process.execPath, [OFFERER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.child.stdin.on('error', () => {})
    let partial = ''
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n')
      partial = parts.pop() ?? ''
      this.lines.push(...parts)
      for (const wake of this.waiters) wake()
    })
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    this.exited = new Promise(resolve => {
      this.child.once('exit', () => {
        resolve()
        for (const wake of this.waiters) wake()
      })
    })
  }

  /** The first line starting with `prefix` (an event-driven wait, bounded only to report a hang) */
  async line (prefix: string, timeout = 60_000): Promise<string> {
    const deadline = Date.now() + timeout
    for (;;) {
      const found = this.lines.find(l => l.startsWith(prefix))
      if (found != null) return found
      if (Date.now() > deadline || this.child.exitCode != null) throw new Error(`no "${prefix}" line; stderr: ${this.stderr.slice(-2000)}`)
      // woken by the next stdout line, the process's exit, or the deadline
      await new Promise<void>(resolve => {
        const timer = setTimeout(() => { wake() }, Math.max(0, deadline - Date.now()) + 1)
        const wake = (): void => { clearTimeout(timer); this.waiters.delete(wake); resolve() }
        this.waiters.add(wake)
      })
    }
  }

  /** Offer another task (the offerer prints OFFERED <taskId>) */
  offer (taskId: string): void {
    this.child.stdin.write(`offer ${taskId}\n`)
  }

  async kill (signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode == null && this.child.signalCode == null && this.child.pid != null) process.kill(this.child.pid, signal)
    await this.exited
  }
}

describe('"first agent wins" with the offerer killed -9 between claims', () => {
  let net: TestNetwork
  let claimants: MoltNode[]
  const offerers: Offerer[] = []

  beforeAll(async () => {
    net = new TestNetwork()
    claimants = []
    // a fast retry of acknowledged but undecided claims, so the test need not wait 15 s
    claimants.push(...await Promise.all(Array.from({ length: CLAIMANTS }, async () => net.node({ tasks: { receipts: false, claimRetryInterval: 300 } }))))
  }, 60_000)

  afterAll(async () => {
    for (const offerer of offerers) await offerer.kill('SIGKILL')
    await net.cleanup()
  })

  it(`grants exactly one claim per task across ${ROUNDS} crashes and restarts`, async () => {
    const dataDir = await net.dir()
    const port = await freePort()
    const claimantsFile = join(await net.dir(), 'claimants.json')
    await writeFile(claimantsFile, JSON.stringify(claimants.map(c => ({ id: c.peerId.toString(), addr: addressOf(c) }))))
    const start = (...extra: string[]): Offerer => {
      const offerer = new Offerer([dataDir, String(port), claimantsFile, ...extra])
      offerers.push(offerer)
      return offerer
    }

    // the offerer restarted in a round offers the next round's task: a process start less per round
    let restarted: Offerer | undefined
    for (let round = 0; round < ROUNDS; round++) {
      const taskId = `crash-${round}`
      const first = restarted ?? start('offer', taskId)
      if (restarted != null) first.offer(taskId)
      await first.line(`OFFERED ${taskId}`)
      await eventually(() => claimants.every(c => c.tasks.get(taskId) != null), 60_000, `offers of ${taskId}`)
      const offererId = claimants[0].tasks.get(taskId)?.offerer ?? ''
      // every grant message any claimant receives for this task, by receiver
      const grantedTo = new Set<string>()
      const listeners = claimants.map(c => {
        const listener = (evt: CustomEvent<{ message: { op: string, p: Record<string, unknown> } }>): void => {
          const { op, p } = evt.detail.message
          if (op === 'task' && p.step === 'grant' && p.task_id === taskId) grantedTo.add(c.peerId.toString())
        }
        c.addEventListener('message', listener)
        return () => { c.removeEventListener('message', listener) }
      })

      const claims = Promise.allSettled(claimants.map(async c => c.tasks.claim(taskId, { timeout: 120_000 })))
      await first.line(`CLAIM ${taskId}`)
      await first.kill('SIGKILL')

      const second = start()
      await second.line('READY')
      // claims the crash left in outboxes are retried now rather than at their next backoff
      await Promise.all(claimants.map(async c => c.retryOutbox(offererId)))
      const outcomes = await claims
      for (const remove of listeners) remove()

      const winners = outcomes.flatMap((o, i) => o.status === 'fulfilled' ? [claimants[i].peerId.toString()] : [])
      expect(winners, `winners of ${taskId}`).toHaveLength(1)
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') {
          expect(outcome.reason).toBeInstanceOf(TaskClaimRefusedError)
          expect(outcome.reason.code).toBe('E_TASK_CLAIMED')
        }
      }
      // only the winner ever got a grant (maybe twice: the crash may have hidden that the first was sent)
      expect([...grantedTo]).toEqual(winners)
      // whichever life of the offerer decided (its line may die with it), it decided once, for the winner
      const granted = [...first.lines, ...second.lines].filter(l => l.startsWith(`GRANTED ${taskId} `))
      expect(granted.length).toBeLessThanOrEqual(1)
      for (const line of granted) expect(line).toBe(`GRANTED ${taskId} ${winners[0]}`)
      restarted = second
    }
    await restarted?.kill('SIGTERM')
  }, 300_000)
})
