/** Poll `check` until it returns something other than undefined/false, or fail after `timeout` ms */
export async function eventually<T> (check: () => T | undefined | false | Promise<T | undefined | false>, timeout = 10_000, what = 'condition', every = 50): Promise<T> {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, every))
  }
}
