export { Inbox, type InboxEntry, type InboxRecord } from './inbox.js'
