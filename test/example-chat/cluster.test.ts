/**
 * The chat on two worker processes behind one port, sharing one Redis
 * (dist/example-chat/cluster.js): sockets land on both workers, a chat line sent on one worker
 * reaches a socket of the other, and SIGTERM to the primary closes everything cleanly.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { within } from '../helpers/deadline.js'
import { deleteKeys, redisUrl, uniquePrefix, withRedis } from '../redis/helpers.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const built = fileURLToPath(new URL('../../dist/example-chat/cluster.js', import.meta.url))

type Frame = Record<string, unknown> & { type: string }

/** A chat socket that queues every frame it gets and knows which worker serves it. */
class ChatSocket {
  readonly frames: Frame[] = []
  private waiters: Array<() => void> = []
  private constructor (readonly ws: WebSocket, readonly pid: number) {}

  static async open (url: string): Promise<ChatSocket> {
    const ws = new WebSocket(url)
    const frames: Frame[] = []
    const collect = (data: WebSocket.RawData): void => { frames.push(JSON.parse(data.toString()) as Frame) }
    ws.on('message', collect)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('expected a `worker` event within 10 s')), 10_000)
      const check = (): void => {
        if (frames.some((f) => f.event === 'worker')) { clearTimeout(timer); resolve() }
      }
      ws.on('message', check)
      ws.once('error', (err) => { clearTimeout(timer); reject(err) })
    })
    const worker = frames.find((f) => f.event === 'worker') as unknown as { data: { pid: number } }
    const socket = new ChatSocket(ws, worker.data.pid)
    ws.off('message', collect)
    socket.frames.push(...frames)
    ws.on('message', (data) => {
      socket.frames.push(JSON.parse(data.toString()) as Frame)
      for (const wake of socket.waiters.splice(0)) wake()
    })
    return socket
  }

  async next (match: (frame: Frame) => boolean, what: string, timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const index = this.frames.findIndex(match)
      if (index !== -1) return this.frames.splice(index, 1)[0]
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`expected ${what} within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  send (frame: object): void {
    this.ws.send(JSON.stringify(frame))
  }
}

t.test('two workers on one Redis: a chat line crosses from one worker to the other', {
  skip: existsSync(built) ? false : 'dist/example-chat/cluster.js is not built (npm run build)'
}, async (t) => {
  await withRedis(t, async () => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const child = spawn(process.execPath, [built], {
      cwd: root,
      env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', WORKERS: '2', REDIS_URL: redisUrl, CHAT_REDIS_PREFIX: prefix },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

    // Both workers listen on the same port: wait for two "listening" lines.
    const address = await new Promise<string>((resolve, reject) => {
      let output = ''
      const timer = setTimeout(() => reject(new Error(`expected two workers listening within 60 s:\n${output}`)), 60_000)
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        const found = [...output.matchAll(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1])
        if (found.length >= 2) {
          clearTimeout(timer)
          t.equal(found[0], found[1], 'one port for both workers')
          resolve(found[0])
        }
      })
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited with ${String(code)} before listening:\n${output}`)) })
    })
    const url = `${address.replace('http:', 'ws:')}/ws`

    // The primary deals connections out round robin: open sockets until two workers serve them.
    const sockets: ChatSocket[] = []
    t.teardown(() => { for (const s of sockets) s.ws.terminate() })
    while (new Set(sockets.map((s) => s.pid)).size < 2) {
      if (sockets.length >= 10) throw new Error(`expected sockets on two workers, all ${sockets.length} are on pid ${sockets[0].pid}`)
      sockets.push(await ChatSocket.open(url))
    }
    const sender = sockets[0]
    const receiver = sockets.find((s) => s.pid !== sender.pid) as ChatSocket
    t.not(sender.pid, receiver.pid, 'sender and receiver live in different processes')

    for (const [i, socket] of [sender, receiver].entries()) {
      socket.send({ type: 'subscribe', channel: 'lobby', id: 100 + i })
      await socket.next((f) => f.type === 'subscribed' && f.id === 100 + i, `'subscribed' to lobby (socket ${i})`)
    }
    // A join reaches Redis asynchronously: send until the line arrives on the other worker.
    let n = 0
    const seen = receiver.next((f) => f.event === 'chat', "the other worker's chat line", 15_000)
    const resend = setInterval(() => {
      sender.send({ type: 'message', event: 'chat', channel: 'lobby', data: { text: `hello across ${n}` }, id: 200 + n++ })
    }, 200)
    t.teardown(() => clearInterval(resend))
    sender.send({ type: 'message', event: 'chat', channel: 'lobby', data: { text: `hello across ${n}` }, id: 200 + n++ })
    const line = await seen
    clearInterval(resend)
    t.match(line, { type: 'message', channel: 'lobby', event: 'chat', data: { text: /^hello across \d+$/ } })
    t.match(await sender.next((f) => f.type === 'ack' && f.id === 200, 'the sender\'s ack'), { type: 'ack' })

    child.kill('SIGTERM')
    t.equal(await within(exited, 15_000, 'the primary exits on SIGTERM'), 0, 'the primary exits cleanly once both workers closed')
  })
})

t.test('more than one worker without REDIS_URL is refused with a clear message', {
  skip: existsSync(built) ? false : 'dist/example-chat/cluster.js is not built (npm run build)'
}, async (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, WORKERS: '2', PORT: '0' }
  delete env.REDIS_URL
  const child = spawn(process.execPath, [built], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await within(new Promise<number | null>((resolve) => child.once('exit', resolve)), 30_000, 'the cluster without REDIS_URL exits')
  t.equal(code, 1)
  t.match(stderr, /WORKERS=2 needs REDIS_URL/)
})
