/**
 * The Redis engine's Lua scripts (lua/*.lua, shipped beside the compiled code), read once, and
 * the one typed way to call them: `runScript(client, name, keys, args)` checks the keys and
 * arguments a script takes at compile time and turns its reply into named fields.
 *
 * Each script is defined on a connection with ioredis' `defineCommand`, which runs it by
 * EVALSHA and sends the whole script with EVAL on a connection that has not run it yet (so the
 * first call after Redis restarted is not sent twice, behind the calls that followed it).
 */
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import type { RedisTime } from './clock.js'

/** What `route-session.lua` did with a send. */
export type RouteOutcome = 'sent' | 'none' | 'not-listening' | 'late'

/** A history stream read back: `entries` oldest first. */
export interface StreamReply {
  epoch: string
  offset: number
  complete: boolean
  entries: Array<{ offset: number, entry: string }>
}

type Argument = string | number

/** Every script by name: the keys it takes, its arguments, and its reply once read. */
export interface ScriptTypes {
  publishBatch: { keys: [channel: string], args: Argument[], reply: 'published' | 'late' }
  routeSession: {
    keys: [nodes: string]
    args: [alivePrefix: string, sessionsPrefix: string, channelPrefix: string, sessionId: string, envelope: string, asker: string, deadline: number, publish: string]
    reply: RouteOutcome
  }
  refreshRegistration: {
    keys: [alive: string, sessions: string, nodes: string]
    args: [ttl: number, nodeId: string, holdsSessions: '1' | '0', sessionsTtl: number]
    reply: { present: boolean, time: RedisTime }
  }
  historyAppend: {
    keys: [meta: string, log: string, base: string]
    args: [newBase: string, metaTtl: number, entry: string, size: number, ttl: number, channel: string, head: string, publish: string, deadline: number]
    reply: { offset: number, epoch: string } | 'late'
  }
  historyRead: {
    keys: [meta: string, log: string, base: string]
    args: [newBase: string, metaTtl: number, mode: 'after' | 'last', n: number, ttl: number]
    reply: StreamReply
  }
  presenceReap: {
    keys: [hash: string]
    args: [nodeId: string, channel: string, head: string, publish: string]
    reply: number
  }
}

export type ScriptName = keyof ScriptTypes

class ReplyError extends Error {
  constructor (script: ScriptName, raw: unknown) {
    super(`redis script ${script} answered ${JSON.stringify(raw)}: not what this version expects`)
  }
}

function integer (script: ScriptName, raw: unknown): number {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw)) throw new ReplyError(script, raw)
  return raw
}

function text (script: ScriptName, raw: unknown): string {
  if (typeof raw !== 'string') throw new ReplyError(script, raw)
  return raw
}

function list (script: ScriptName, raw: unknown, length?: number): unknown[] {
  if (!Array.isArray(raw) || (length !== undefined && raw.length !== length)) throw new ReplyError(script, raw)
  return raw
}

interface Definition<N extends ScriptName> {
  file: string
  /** a file of Lua both history scripts share, prepended to this one's */
  prelude?: string
  keys: ScriptTypes[N]['keys']['length']
  read: (raw: unknown) => ScriptTypes[N]['reply']
}

const definitions: { [N in ScriptName]: Definition<N> } = {
  publishBatch: {
    file: 'publish-batch.lua',
    keys: 1,
    read: (raw) => integer('publishBatch', raw) === -2 ? 'late' : 'published'
  },
  routeSession: {
    file: 'route-session.lua',
    keys: 1,
    read (raw) {
      const receivers = integer('routeSession', raw)
      return receivers > 0 ? 'sent' : receivers === 0 ? 'none' : receivers === -1 ? 'not-listening' : 'late'
    }
  },
  refreshRegistration: {
    file: 'refresh-registration.lua',
    keys: 3,
    read (raw) {
      const [present, seconds, micros] = list('refreshRegistration', raw, 3)
      return { present: integer('refreshRegistration', present) === 1, time: [text('refreshRegistration', seconds), text('refreshRegistration', micros)] }
    }
  },
  historyAppend: {
    file: 'history-append.lua',
    prelude: 'prelude-stream.lua',
    keys: 3,
    read (raw) {
      if (raw === -2) return 'late'
      const [offset, epoch] = list('historyAppend', raw, 2)
      return { offset: integer('historyAppend', offset), epoch: text('historyAppend', epoch) }
    }
  },
  historyRead: {
    file: 'history-read.lua',
    prelude: 'prelude-stream.lua',
    keys: 3,
    read (raw) {
      const [epoch, offset, complete, flat] = list('historyRead', raw, 4)
      const pairs = list('historyRead', flat)
      const entries: StreamReply['entries'] = []
      for (let i = 0; i + 1 < pairs.length; i += 2) {
        entries.push({ offset: Number(text('historyRead', pairs[i])), entry: text('historyRead', pairs[i + 1]) })
      }
      return { epoch: text('historyRead', epoch), offset: integer('historyRead', offset), complete: integer('historyRead', complete) === 1, entries }
    }
  },
  presenceReap: {
    file: 'presence-reap.lua',
    keys: 1,
    read: (raw) => integer('presenceReap', raw)
  }
}

function isScriptName (name: string): name is ScriptName {
  return Object.hasOwn(definitions, name)
}

export const scriptNames: readonly ScriptName[] = Object.keys(definitions).filter(isScriptName)

/** The file each script is read from. */
export function scriptFile (name: ScriptName): string {
  return definitions[name].file
}

/** The prelude prepended to a script, if any. */
export function preludeFile (name: ScriptName): string | undefined {
  return definitions[name].prelude
}

/** The folder of the .lua files, beside this module (in the sources and in dist/ alike). */
export const luaDirectory = new URL('./lua/', import.meta.url)

let sources: Map<ScriptName, string> | undefined

function readLua (file: string): string {
  return readFileSync(new URL(file, luaDirectory), 'utf8')
}

/** Every script's source (its prelude first, if any), read from its files on first use. */
export function scriptSources (): Map<ScriptName, string> {
  sources ??= new Map(scriptNames.map((name) => {
    const { file, prelude } = definitions[name]
    return [name, prelude === undefined ? readLua(file) : `${readLua(prelude)}\n${readLua(file)}`]
  }))
  return sources
}

/** The command name a script is defined under on a connection (apart from Redis' own). */
function commandOf (name: ScriptName): string {
  return `channels_${name}`
}

/** Defines every script on `client` (a `Redis` or a `Cluster`), once per client. */
export function defineScripts (client: Redis): void {
  for (const [name, lua] of scriptSources()) {
    client.defineCommand(commandOf(name), { numberOfKeys: definitions[name].keys, lua })
  }
}

/** Runs script `name` on `client` (where `defineScripts` ran) and reads its reply. */
export async function runScript<N extends ScriptName> (
  client: Redis, name: N, keys: ScriptTypes[N]['keys'], args: ScriptTypes[N]['args']
): Promise<ScriptTypes[N]['reply']> {
  const command: unknown = Reflect.get(client, commandOf(name))
  if (typeof command !== 'function') throw new Error(`redis script ${name} is not defined on this connection`)
  const raw: unknown = await command.call(client, ...keys, ...args)
  const definition: Definition<N> = definitions[name]
  return definition.read(raw)
}
