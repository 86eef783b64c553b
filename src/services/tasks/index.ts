import { DefaultTaskService, type TaskServiceComponents, type TaskServiceInit, type TaskService } from './tasks.js'

export type { TaskService, TaskServiceInit, TaskServiceComponents, TaskInit, ClaimOptions, TaskListOptions, OfferTarget } from './tasks.js'
export type { TaskRecord, TaskState, TaskGrant } from './store.js'
export { TaskNotFoundError, TaskStateError, TaskClaimRefusedError, TaskStoreFullError, InvalidTaskError } from './errors.js'
export { TASK_STATES, TASK_ERROR_CODES, MAX_OFFER_PEERS, MAX_TASKS, CLAIM_RETRY_INTERVAL } from './constants.js'

/** The task service with its store loaded and its listener on the node; call `start()` once the node can send */
export async function createTaskService (components: TaskServiceComponents, init?: TaskServiceInit): Promise<TaskService & { start: () => void }> {
  const service = new DefaultTaskService(components, init)
  await service.open()
  return service
}
