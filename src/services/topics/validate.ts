import type { PeerId } from '@libp2p/interface'
import { MoltSpeakError, parseMessage, publicKeyToMoltKey, verifyMessageSource, type MoltMessage } from '../../moltspeak/index.js'
import { MAX_TOPIC_MESSAGE_BYTES } from './constants.js'
import { TopicMessageError } from './errors.js'

const decoder = new TextDecoder('utf-8', { fatal: true })

/** The `to` of a message published on `topic`: it names the topic, so a signed message cannot be moved to another one */
export function topicRecipient (topic: string): { agent: string, org: string } {
  return { agent: topic, org: 'topic' }
}

/**
 * Decode and check one topic message before anything else sees it: size on
 * the raw bytes, nesting before JSON.parse (parseMessage), the MoltSpeak
 * schema, a signature by `from.key`, `from.key` = the gossipsub publisher's
 * key (gossipsub signed the envelope with it), and `to` naming this topic.
 *
 * @throws {TopicMessageError}
 */
export function decodeTopicMessage (data: Uint8Array, publisher: PeerId, topic: string): { message: MoltMessage, json: string } {
  if (data.byteLength > MAX_TOPIC_MESSAGE_BYTES) throw new TopicMessageError(`topic message of ${data.byteLength} bytes exceeds ${MAX_TOPIC_MESSAGE_BYTES}`, 'size')
  let message: MoltMessage
  let json: string
  try {
    json = decoder.decode(data)
    message = parseMessage(json, { maxMessageBytes: MAX_TOPIC_MESSAGE_BYTES })
  } catch (err: any) {
    throw new TopicMessageError(err instanceof MoltSpeakError ? `${err.code}: ${err.message}` : 'not UTF-8 JSON', 'schema')
  }
  if (typeof message.sig !== 'string' || message.from.key == null) throw new TopicMessageError('topic messages must be signed (sig with from.key)', 'unsigned')
  const raw = publisher.publicKey?.raw
  if (raw == null || message.from.key !== publicKeyToMoltKey(raw)) throw new TopicMessageError(`from.key is not the key of the publisher ${publisher}`, 'publisher')
  if (message.to?.agent !== topic || message.to.org !== 'topic') throw new TopicMessageError(`the message is addressed to ${message.to?.agent}, not to ${topic}`, 'topic')
  let valid = false
  try {
    valid = verifyMessageSource(message, json)
  } catch {}
  if (!valid) throw new TopicMessageError('signature does not verify against from.key', 'signature')
  return { message, json }
}
