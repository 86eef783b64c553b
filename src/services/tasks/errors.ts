/** No task of that id in this node's store */
export class TaskNotFoundError extends Error {
  static override name = 'TaskNotFoundError'
  override name = 'TaskNotFoundError'
  readonly code = 'E_TASK_UNKNOWN'
}

/** The operation does not fit the task's state or this node's role in it (e.g. completing a task not granted to us) */
export class TaskStateError extends Error {
  static override name = 'TaskStateError'
  override name = 'TaskStateError'
  readonly code = 'E_INVALID_PARAM'
}

/** The offerer refused this node's claim: `code` says why (E_TASK_CLAIMED when another agent won) */
export class TaskClaimRefusedError extends Error {
  static override name = 'TaskClaimRefusedError'
  override name = 'TaskClaimRefusedError'
  constructor (message: string, readonly code: string) {
    super(message)
  }
}

/** The store holds MAX_TASKS tasks that are not finished */
export class TaskStoreFullError extends Error {
  static override name = 'TaskStoreFullError'
  override name = 'TaskStoreFullError'
  readonly code = 'E_RATE_LIMIT'
}

/** A task field is missing, of the wrong type or over its limit */
export class InvalidTaskError extends Error {
  static override name = 'InvalidTaskError'
  override name = 'InvalidTaskError'
  readonly code = 'E_INVALID_PARAM'
  constructor (message: string, readonly field: string) {
    super(message)
  }
}
