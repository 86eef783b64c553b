export { Inbox, type InboxEntry, type InboxRecord } from './inbox.js'
export { entryJson, unserializable, type UnserializableEntry } from './serialize.js'
