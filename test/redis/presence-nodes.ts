/**
 * Presence nodes in child processes (test/presence/fixtures/node.ts), for the Redis presence
 * tests: started, signalled (SIGKILL, SIGSTOP, SIGCONT) and asked for their presence over HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { childEnv } from '../history/helpers.js'
import { exited, listeningPort } from './helpers.js'

const fixture = fileURLToPath(new URL('../presence/fixtures/node.ts', import.meta.url))
const tsImport = import.meta.resolve('@tapjs/typescript/import')

export class PresenceNode {
  private constructor (readonly child: ChildProcess, readonly port: number) {}

  get url (): string {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  static async start (t: Test, env: { PREFIX: string, NODE_TTL?: string, REDIS_URL?: string, REDIS_CLUSTER_URL?: string }): Promise<PresenceNode> {
    const child = spawn(process.execPath, [`--import=${tsImport}`, fixture], { env: childEnv(env), stdio: ['ignore', 'pipe', 'inherit'] })
    const node = new PresenceNode(child, await listeningPort(child, 'presence node'))
    t.teardown(async () => {
      node.signal('SIGCONT')
      await node.kill()
    })
    return node
  }

  async presence (channel: string): Promise<Record<string, Array<{ ref: string, meta: unknown }>>> {
    const response = await fetch(`http://127.0.0.1:${this.port}/presence/${encodeURIComponent(channel)}`)
    return await response.json() as Record<string, Array<{ ref: string, meta: unknown }>>
  }

  signal (signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
  }

  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const gone = exited(this.child, `the presence node exits on ${signal}`)
    this.child.kill(signal)
    await gone
  }
}
