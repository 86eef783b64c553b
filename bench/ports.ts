import { createServer } from 'node:net'

/** A TCP port free on 127.0.0.1 right now (for processes that must restart on the same port) */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}
