import { connectToRunningAgent } from '../../api/local-agent.js'
import { ApiError } from '../../api/errors.js'

/** The task and topic routes, through the running agent or in process */
export interface LocalApi {
  /** `path` is below `base` (e.g. `/<id>` or `?role=worker`) */
  call<T = any>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T>
  close(): Promise<void>
}

/**
 * The running agent's API when there is one, else a short-lived node on the
 * data dir answering through the same routes (one set of checks and error
 * codes whichever way a command runs)
 */
export async function openLocalApi (dataDir: string, signal: AbortSignal, base: '/v1/tasks' | '/v1/topics'): Promise<LocalApi> {
  const running = await connectToRunningAgent(dataDir, { signal })
  if (running != null) {
    const client = running.client
    return {
      call: async (method, path, body) => base === '/v1/tasks'
        ? client.tasks(method, path, body, { signal })
        : client.topics(method, path, body, { signal }),
      close: async () => {}
    }
  }
  // libp2p is loaded only when no agent runs here
  const { createMoltNode } = await import('../../node.js')
  const node = await createMoltNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const { taskRoutes } = await import('../../api/task-routes.js')
  const { topicRoutes } = await import('../../api/topic-routes.js')
  const routes = new Map([...taskRoutes(node), ...topicRoutes(node)])
  return {
    call: async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> => {
      const url = new URL(`http://local${base}${path}`)
      const route = routes.get(url.pathname) ?? routes.get(`${base}/*`)
      try {
        return await route?.[method]?.handler?.({ url, body, signal } as any) as T
      } catch (err: any) {
        if (err?.name === 'HttpError') throw new ApiError(err.message, err.code, err.status, err.field)
        throw err
      }
    },
    close: async () => { await node.stop() }
  }
}

/** `openLocalApi` for the length of `use`, closed after it whatever happens */
export async function withLocalApi<T> (dataDir: string, signal: AbortSignal, base: '/v1/tasks' | '/v1/topics', use: (api: LocalApi) => Promise<T>): Promise<T> {
  const api = await openLocalApi(dataDir, signal, base)
  try {
    return await use(api)
  } finally {
    await api.close()
  }
}
