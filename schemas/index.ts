export * from './protocol.js'
export * from './channel.js'
export * from './codec.js'
export type * from './events.js'
