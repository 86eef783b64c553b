export { Inbox, type InboxEntry, type InboxRecord, type AppendOptions, type InboxInit } from './inbox.js'
export { entryJson, unserializable, type UnserializableEntry } from './serialize.js'
