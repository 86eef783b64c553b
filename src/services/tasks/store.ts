import type { Database } from '../../storage/index.js'
import type { TaskPriority } from '../../moltspeak/index.js'
import { GroupCommit } from '../../storage/group-commit.js'
import { TERMINAL_STATES, type TASK_STATES } from './constants.js'
import { TaskStoreFullError } from './errors.js'

export type TaskState = typeof TASK_STATES[number]

/** The grant of a task to one claimant, decided and persisted by the offerer */
export interface TaskGrant {
  /** PeerId of the agent that won the claim */
  claimant: string
  /** The claimant's claim id (stable across its re-sends) */
  claimId: string
  grantedAt: number
  /** Whether the grant message was handed to delivery (else it is re-sent at start) */
  sent?: boolean
}

/** One task as this node knows it: as its offerer, or as an agent it was offered to */
export interface TaskRecord {
  id: string
  role: 'offerer' | 'worker'
  state: TaskState
  /** PeerId of the offerer */
  offerer: string
  /** Offerer: the agents it was offered to */
  offeredTo?: string[]
  /** The team topic it was offered to (protocols/topics.md): any member may claim it */
  topic?: string
  /** The agent the task is granted to (the offerer's decision, as both sides know it) */
  worker?: string
  type?: string
  description?: string
  params?: Record<string, unknown>
  priority?: TaskPriority
  /** Unix ms; the task expires if not finished by then */
  deadline: number
  /** Worker: the offer message's id (completion and failure answer it with `re`) */
  offerMessage?: string
  /** Worker: its claim, while undecided and after */
  claim?: { id: string, at: number, messages: string[] }
  grant?: TaskGrant
  progress?: number
  note?: string
  result?: unknown
  error?: { code: string, message: string }
  /** Ids of the messages of each transition (their delivery receipts can be asked of `node.receipt`) */
  messages: Array<{ step: string, id: string, peer: string }>
  createdAt: number
  updatedAt: number
}

/**
 * Tasks in LevelDB (`tasks` sublevel, id → record JSON) with an in-memory
 * mirror. Every change is written before any message announces it; the
 * offerer's decisions are also fsynced (group commit).
 */
export class TaskStore {
  private readonly records = new Map<string, TaskRecord>()
  private readonly table: ReturnType<Database['sublevel']>
  /** fsynced: the offerer's decisions (grant, cancel) survive even a power loss */
  private readonly synced: GroupCommit
  /** written to LevelDB's log without fsync: survives a killed process, costs no disk flush */
  private readonly unsynced: GroupCommit

  constructor (db: Database, private readonly maxTasks: number) {
    this.table = db.sublevel('tasks', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.synced = new GroupCommit(db, { sync: true })
    this.unsynced = new GroupCommit(db, { sync: false })
  }

  async open (): Promise<void> {
    for await (const [id, json] of this.table.iterator()) {
      try {
        this.records.set(id as string, JSON.parse(json as string) as TaskRecord)
      } catch {}
    }
  }

  get (id: string): TaskRecord | undefined {
    return this.records.get(id)
  }

  get size (): number {
    return this.records.size
  }

  all (): TaskRecord[] {
    return [...this.records.values()]
  }

  /** Keep a new record: refused when the store is full of unfinished tasks */
  async add (record: TaskRecord): Promise<void> {
    if (this.records.size >= this.maxTasks) await this.prune()
    if (this.records.size >= this.maxTasks) throw new TaskStoreFullError(`${this.maxTasks} unfinished tasks are stored`)
    await this.save(record)
  }

  /** Write a record; resolves once it is written (`sync`: on disk, fsynced) */
  async save (record: TaskRecord, options: { sync?: boolean } = {}): Promise<void> {
    record.updatedAt = Date.now()
    await (options.sync === true ? this.synced : this.unsynced).write([{ type: 'put', sublevel: this.table, key: record.id, value: JSON.stringify(record) }])
    // the mirror follows the disk: a failed write leaves the last durable state in force
    this.records.set(record.id, record)
  }

  /** Drop the oldest finished tasks until the store is under its limit */
  async prune (): Promise<void> {
    const finished = this.all().filter(r => TERMINAL_STATES.has(r.state)).sort((a, b) => a.updatedAt - b.updatedAt)
    const drop = finished.slice(0, Math.max(0, this.records.size - this.maxTasks + 1))
    for (const record of drop) this.records.delete(record.id)
    await this.unsynced.write(drop.map(r => ({ type: 'del' as const, sublevel: this.table, key: r.id })))
  }

  async close (): Promise<void> {
    await this.synced.close()
    await this.unsynced.close()
  }
}
