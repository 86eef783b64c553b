import type { MoltNode } from '../node.js'
import { HttpError } from './errors.js'
import { requireObject } from './validate.js'
import type { Method, Route, RouteContext } from './route.js'

/** Key rotation errors a caller can cause: 409 (the data dir is not in a state to rotate) or 400 (a bad statement) */
const ROTATION_ERRORS: Record<string, [number, 'E_INVALID_PARAM' | 'E_SIGNATURE']> = {
  KeyRotationError: [409, 'E_INVALID_PARAM'],
  InvalidRotationError: [400, 'E_INVALID_PARAM'],
  RotationSignatureError: [400, 'E_SIGNATURE'],
  RotationConflictError: [409, 'E_INVALID_PARAM']
}

/**
 * POST /v1/key/rotate (rotate this agent's key: node.rotateKey()),
 * GET /v1/key/rotations (the rotations this node holds),
 * POST /v1/key/rotations (keep and publish a statement signed elsewhere)
 * (protocols/identity.md, "Key rotation")
 */
export function keyRoutes (node: MoltNode): Array<[string, Partial<Record<Method, Route>>]> {
  const rotate = async ({ body, signal }: RouteContext): Promise<unknown> => {
    if (body !== undefined) requireObject(body, [])
    return mapErrors(async () => node.rotateKey({ signal }))
  }
  const submit = async ({ body }: RouteContext): Promise<unknown> => {
    const fields = requireObject(body, ['rotation'])
    return mapErrors(async () => node.trust.publishKeyRotation(fields.rotation))
  }
  return [
    ['/v1/key/rotate', { POST: { handler: rotate } }],
    ['/v1/key/rotations', { GET: { handler: async () => ({ rotations: node.trust.keyRotations() }) }, POST: { handler: submit } }]
  ]
}

async function mapErrors<T> (task: () => Promise<T>): Promise<T> {
  try {
    return await task()
  } catch (err: any) {
    const mapped = ROTATION_ERRORS[err?.name]
    if (mapped !== undefined) throw new HttpError(mapped[0], mapped[1], err.message, err.field)
    throw err
  }
}
