import { describe, it, expect } from 'vitest'
import { OutboxWatch, type OutboxEvents } from '../../src/cli/outbox-watch.js'

const left = (target: EventTarget, id: string, status: 'delivered' | 'stored'): void => {
  target.dispatchEvent(new CustomEvent('outbox', { detail: { id, status } }))
}

describe('OutboxWatch (the one-off molt send waiting for its message to leave the outbox)', () => {
  it('sees a message that left before its id was known: the outbox can deliver it before send() returns', async () => {
    const node = new EventTarget()
    const watch = new OutboxWatch(node as unknown as OutboxEvents)
    left(node, 'early', 'delivered')
    expect(watch.seen('early')).toBe('delivered')
    // and a wait for it ends at once, without the deadline
    await expect(watch.wait('early', new AbortController().signal)).resolves.toBe('delivered')
    watch.close()
  })

  it('waits for a message that leaves later, and gives up (undefined) when its signal aborts', async () => {
    const node = new EventTarget()
    const watch = new OutboxWatch(node as unknown as OutboxEvents)
    const later = watch.wait('later', new AbortController().signal)
    left(node, 'other', 'delivered')
    left(node, 'later', 'stored')
    await expect(later).resolves.toBe('stored')
    const deadline = new AbortController()
    const never = watch.wait('never', deadline.signal)
    deadline.abort()
    await expect(never).resolves.toBeUndefined()
    watch.close()
    // closed: no longer listening
    left(node, 'after', 'delivered')
    expect(watch.seen('after')).toBeUndefined()
  })
})
