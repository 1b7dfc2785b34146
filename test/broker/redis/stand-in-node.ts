/**
 * What the Redis engine's own tests (engine*.test.ts) share: a stand-in for the node the engine
 * serves (EngineNode: a log whose lines are kept, the envelopes it received, its restores) and
 * the server-side cut of a named connection (CLIENT KILL) that begins an outage.
 */
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import type { Redis } from 'ioredis'
import type { EngineNode } from '../../../plugin/broker/parts.js'

/** A log line of the stand-in node, with the number of restores that had begun when it was written. */
export interface Line {
  level: number
  msg: string
  time: number
  restores: number
  shard?: string
  err?: { message?: string }
  channels?: number
  sessions?: number
  dropped?: number
  outageMs?: number
}

/** A node as the engine sees it: its log lines, what it received, each restore and how many ran at once. */
export class StandInEngineNode implements EngineNode {
  readonly nodeId = randomBytes(6).toString('hex')
  readonly lines: Line[] = []
  readonly received: string[] = []
  restores = 0
  running = 0
  mostAtOnce = 0
  /** restores that reject before one resolves */
  failRestores = 0
  /** when set, the next restore waits for it */
  gate: Promise<void> | undefined
  readonly log = Fastify({
    logger: { level: 'debug', stream: { write: (line: string) => { this.lines.push({ ...JSON.parse(line) as Line, restores: this.restores }) } } }
  }).log

  /** @param restored what each restore reports it restored (the engine logs it) */
  constructor (private readonly restored = { channels: 3, sessions: 2 }) {}

  receive (envelope: string): void {
    this.received.push(envelope)
  }

  async restore (): Promise<{ channels: number, sessions: number }> {
    this.restores++
    this.running++
    this.mostAtOnce = Math.max(this.mostAtOnce, this.running)
    try {
      const gate = this.gate
      this.gate = undefined
      if (gate !== undefined) await gate
      if (this.failRestores > 0) {
        this.failRestores--
        throw new Error('restore failed')
      }
      return { ...this.restored }
    } finally {
      this.running--
    }
  }

  named (msg: RegExp): Line[] {
    return this.lines.filter((line) => msg.test(line.msg))
  }
}

export const unreachable = /redis unreachable/
export const back = /redis is back/
export const stillUnreachable = /still unreachable/

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** The ids of the client connections called `name` (CLIENT LIST on `server`). */
export async function clientIds (server: Redis, name: string): Promise<string[]> {
  const list = await server.client('LIST') as string
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).map((line) => /^id=(\d+)/.exec(line)?.[1] ?? '')
}

/** Cuts the connections called `name` from the server's side; resolves with how many. */
export async function cut (server: Redis, name: string): Promise<number> {
  const ids = await clientIds(server, name)
  for (const id of ids) await server.client('KILL', 'ID', id)
  return ids.length
}
