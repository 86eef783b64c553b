/** A topic name outside TOPIC_NAME_PATTERN */
export class InvalidTopicError extends Error {
  static override name = 'InvalidTopicError'
  override name = 'InvalidTopicError'
  readonly code = 'E_INVALID_PARAM'
}

/** This node has joined MAX_TOPICS topics already */
export class TooManyTopicsError extends Error {
  static override name = 'TooManyTopicsError'
  override name = 'TooManyTopicsError'
  readonly code = 'E_RATE_LIMIT'
}

/** A topic message refused by the validator: `reason` names the check (size, schema, signature, publisher, topic) */
export class TopicMessageError extends Error {
  static override name = 'TopicMessageError'
  override name = 'TopicMessageError'
  constructor (message: string, readonly reason: 'size' | 'schema' | 'unsigned' | 'publisher' | 'signature' | 'topic') {
    super(message)
  }
}
