/** A write was queued after the database began closing; it was not written */
export class DatabaseClosingError extends Error {
  static override name = 'DatabaseClosingError'
  override name = 'DatabaseClosingError'
}
