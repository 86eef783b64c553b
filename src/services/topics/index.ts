export { createTopicService, topicOf, type TopicService, type TopicComponents, type TopicInfo, type PublishResult, type TopicStats, type TopicInbound } from './topics.js'
export { InvalidTopicError, TooManyTopicsError, TopicMessageError } from './errors.js'
export { TOPIC_PREFIX, TOPIC_NAME_PATTERN, MAX_TOPIC_MESSAGE_BYTES, MAX_TOPICS, PUBLISHER_BURST, PUBLISHER_RATE_PER_MINUTE, MAX_TOPIC_MESSAGE_AGE } from './constants.js'
