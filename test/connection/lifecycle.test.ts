/**
 * The end of a connection (plugin/connection/membership.ts, driven by connection-state.ts) end to end: the
 * disconnect sequence, and a refused socket that gets none of it.
 */
import t from 'tap'
import { ChannelError } from '../../plugin/index.js'
import { startInMemory } from '../helpers/in-memory.js'
import { within } from '../helpers/deadline.js'
import { until } from '../helpers/server.js'

t.test('a connect handler that throws closes with 1008; no disconnect or finish for it', async (t) => {
  const ran: string[] = []
  const { app, open } = await startInMemory({}, (app) => {
    app.channels.on('connect', async (socket) => {
      await socket.subscribe('lobby')
      if (socket.request.headers['x-token'] !== 'ok') throw new ChannelError('UNAUTHORIZED', 'bad token')
    })
    app.channels.on('connect', (socket) => {
      if (socket.request.headers['x-crash'] === 'yes') throw new Error('internal detail')
    })
    app.channels.on('disconnect', () => { ran.push('disconnect') })
    app.channels.on('unsubscribe', () => { ran.push('unsubscribe') })
    app.channels.on('finish', () => { ran.push('finish') })
  })
  t.teardown(() => app.close())
  const refused = await open()
  t.same(await within(refused.closed, 3000, 'a ChannelError from a connect handler closes the socket'), { code: 1008, reason: 'bad token' })
  const crashed = await open({ headers: { 'x-token': 'ok', 'x-crash': 'yes' } })
  t.same(await within(crashed.closed, 3000, 'a crashing connect handler closes the socket'), { code: 1008, reason: 'connection refused' },
    'no internals in the reason')
  await until(() => app.channels.stats().sockets === 0, 3000, 'the refused sockets are gone')
  t.has(app.channels.stats(), { sockets: 0, channels: 0 }, 'the refused socket left its channels')
  t.same(ran, [])
})

t.test('disconnect order: disconnect (channels held), unsubscribe each, finish once', async (t) => {
  const log: string[] = []
  let done!: () => void
  const finished = new Promise<void>((resolve) => { done = resolve })
  const { app, connect } = await startInMemory({}, (app) => {
    app.channels.on('disconnect', { channel: /^room-/ }, (socket, info) => {
      log.push(`disconnect room filter: ${[...socket.channels].join(',')} code=${info.code} reason=${info.reason}`)
    })
    app.channels.on('disconnect', { channel: 'nowhere' }, () => { log.push('never: no held channel matches') })
    app.channels.on('unsubscribe', async (socket, channel) => {
      log.push(`unsubscribe ${channel}; still held: ${[...socket.channels].join(',')}`)
      await socket.broadcastChannel({ left: socket.id }, { channel, event: 'left' })
    })
    app.channels.on('finish', (socket) => {
      log.push(`finish; held: ${socket.channels.size}`)
      done()
    })
  })
  t.teardown(() => app.close())
  const leaver = await connect()
  const stayer = await connect()
  await leaver.subscribe('room-1')
  await leaver.subscribe('room-2')
  await stayer.subscribe('room-2')
  leaver.ws.close(4000, 'bye')
  await within(finished, 3000, 'finish runs once the leaver closed')
  t.same(log, [
    'disconnect room filter: room-1,room-2 code=4000 reason=bye',
    'unsubscribe room-1; still held: room-2',
    'unsubscribe room-2; still held: ',
    'finish; held: 0'
  ])
  t.same(await stayer.next(), { type: 'message', event: 'left', channel: 'room-2', data: { left: leaver.sessionId } }, 'a leave notice reaches the others')
  t.has(app.channels.stats(), { sockets: 1, channels: 1 })
  stayer.close()
})
