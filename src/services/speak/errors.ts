/** The peer did not acknowledge a message within the ack timeout */
export class AckTimeoutError extends Error {
  static override name = 'AckTimeoutError'
  override name = 'AckTimeoutError'
}

/** The session stream closed or reset before the message was acknowledged */
export class SessionClosedError extends Error {
  static override name = 'SessionClosedError'
  override name = 'SessionClosedError'
}

/** The message does not fit in one frame (MoltSpeak's 1 MiB limit) */
export class MessageTooLargeError extends Error {
  static override name = 'MessageTooLargeError'
  override name = 'MessageTooLargeError'
}

/** A stream arrived while the speak service was stopping: it is aborted, not served */
export class SpeakStoppingError extends Error {
  static override name = 'SpeakStoppingError'
  override name = 'SpeakStoppingError'
}
