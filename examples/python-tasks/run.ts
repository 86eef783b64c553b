/**
 * Example — Python workers racing for tasks ("first agent wins").
 * Starts two `molt agent` processes, each with a Python worker (worker.py,
 * on clients/python's molt_client) that claims every task offered to its
 * agent. A TypeScript SDK node offers TASKS tasks to both agents; for each,
 * its node grants the first claim and refuses the other at once
 * (E_TASK_CLAIMED); the winner completes it. Checks that every task was
 * granted once, completed once with the right result, and lost once, then
 * ends with one deterministic line:
 *   example python-tasks: 10 tasks raced by 2 Python workers; each granted once and completed once (10 wins, 10 refusals E_TASK_CLAIMED)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { createMoltNode, type TaskRecord } from '../../src/index.js'
import { startAgent, stop, tcpAddress, waitForLine } from './processes.js'

const TASKS = 10
const here = dirname(fileURLToPath(import.meta.url))
// this file runs from dist/examples/python-tasks; worker.py is not compiled, so it stays in the repo
const root = join(here, '..', '..', '..')
const cli = join(root, 'dist', 'src', 'cli', 'main.js')
const script = join(root, 'examples', 'python-tasks', 'worker.py')

const dirs: string[] = []
const children: ChildProcess[] = []
const tempDir = async (name: string): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), `molt-example-python-tasks-${name}-`))
  dirs.push(dir)
  return dir
}

try {
  const events: Array<{ worker: string, event: string, task: string, code?: string }> = []
  const agents = []
  for (const name of ['worker-a', 'worker-b']) {
    const dataDir = await tempDir(name)
    const listening = await startAgent(cli, dataDir, children)
    const python = spawn('python3', [script, dataDir, name], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } })
    children.unshift(python)
    await waitForLine(python, `worker.py ${name}`, (line) => line === 'python worker ready' ? true : undefined)
    createInterface({ input: python.stdout }).on('line', (line) => {
      try {
        events.push({ worker: name, ...JSON.parse(line) })
      } catch {}
    })
    agents.push(listening)
  }

  const dispatcher = await createMoltNode({ dataDir: await tempDir('dispatcher'), listen: ['/ip4/127.0.0.1/tcp/0'], agent: { name: 'dispatcher', org: 'example' } })
  try {
    const workers = await Promise.all(agents.map(async a => dispatcher.resolvePeer(multiaddr(tcpAddress(a)))))
    const completed = new Map<string, TaskRecord>()
    const allDone = new Promise<void>(resolve => {
      dispatcher.tasks.addEventListener('completed', (evt: CustomEvent<TaskRecord>) => {
        completed.set(evt.detail.id, evt.detail)
        if (completed.size === TASKS) resolve()
      })
    })
    const grants = new Map<string, number>()
    dispatcher.tasks.addEventListener('claimed', (evt: CustomEvent<TaskRecord>) => { grants.set(evt.detail.id, (grants.get(evt.detail.id) ?? 0) + 1) })
    for (let n = 1; n <= TASKS; n++) await dispatcher.tasks.offer(workers, { id: `square-${n}`, type: 'math.square', params: { n } })
    // a deadline for a stuck run, cleared once the tasks are done: a pending timer would keep this
    // process alive for the rest of its 60 s after the example finished
    let deadline: ReturnType<typeof setTimeout> | undefined
    try {
      await Promise.race([allDone, new Promise((_resolve, reject) => { deadline = setTimeout(() => { reject(new Error('the tasks were not all completed within 60 s')) }, 60_000) })])
    } finally {
      clearTimeout(deadline)
    }
    // the losers' refusals arrive at once, but on their own path: wait for them
    const refusalsBy = Date.now() + 20_000
    while (events.length < 2 * TASKS && Date.now() < refusalsBy) await new Promise(resolve => setTimeout(resolve, 50))

    for (let n = 1; n <= TASKS; n++) {
      const id = `square-${n}`
      const record = completed.get(id)
      const won = events.filter(e => e.task === id && e.event === 'won')
      const lost = events.filter(e => e.task === id && e.event === 'lost')
      if (grants.get(id) !== 1) throw new Error(`${id} was granted ${grants.get(id) ?? 0} times`)
      if (won.length !== 1 || lost.length !== 1) throw new Error(`${id}: ${won.length} wins and ${lost.length} losses`)
      if ((record?.result as { square?: number } | undefined)?.square !== n * n) throw new Error(`${id}: wrong result ${JSON.stringify(record?.result)}`)
      if (record?.worker !== workers[won[0].worker === 'worker-a' ? 0 : 1].toString()) throw new Error(`${id}: completed by another agent than the winner`)
    }
    const wins = events.filter(e => e.event === 'won').length
    const codes = [...new Set(events.filter(e => e.event === 'lost').map(e => e.code))]
    process.stdout.write(`example python-tasks: ${TASKS} tasks raced by 2 Python workers; each granted once and completed once (${wins} wins, ${events.length - wins} refusals ${codes.join(', ')})\n`)
  } finally {
    await dispatcher.stop()
  }
} finally {
  for (const child of children) await stop(child)
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
}
