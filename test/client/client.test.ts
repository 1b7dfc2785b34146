/**
 * The client in Node against a real server: the welcome, subscriptions, listeners, send,
 * request and the error codes that reach it.
 */
import t, { type Test } from 'tap'
import { Type } from '@sinclair/typebox'
import { ChannelError } from '../../plugin/index.js'
import type { ChannelSocket } from '../../plugin/types.js'
import { ChannelsClientError } from '../../client/index.js'
import { startApp, until } from '../helpers/server.js'
import { clientFor, nextEvent, statusOf } from './helpers.js'

const Chat = Type.Object({ text: Type.String({ minLength: 1, maxLength: 20 }) })

async function chatServer (t: Test): Promise<{ url: string, sockets: ChannelSocket[] }> {
  const sockets: ChannelSocket[] = []
  const { app, url } = await startApp({}, (app) => {
    app.channels.on('connect', (socket) => { sockets.push(socket) })
    app.channels.on('subscribe', { channel: /^private-/ }, () => { throw new ChannelError('FORBIDDEN', 'members only') })
    app.channels.on('subscribe', { channel: 'vip' }, () => { throw new ChannelError('NOT_VIP', 'vips only') })
    app.channels.on('message', { event: 'chat', channel: /^room-/, schema: Chat }, (socket, data, meta) => {
      socket.sendAndBroadcastChannel({ text: data.text, from: socket.id }, { channel: meta.channel, event: 'chat' })
      return { ok: true, length: data.text.length }
    })
    app.channels.on('message', { event: 'whoami' }, (socket) => socket.id)
    app.channels.on('message', { event: 'quiet' }, () => undefined)
    app.channels.on('message', { event: 'boom' }, () => { throw new Error('secret internals') })
    app.channels.on('message', { event: 'join-me' }, async (socket, data) => { await socket.subscribe(data as string) })
  })
  t.teardown(() => app.close())
  return { url, sockets }
}

t.test('connects: status goes connecting → open, sessionId comes from the welcome', async (t) => {
  const { url, sockets } = await chatServer(t)
  const client = clientFor(t, url)
  const statuses: string[] = []
  client.onStatus((status) => statuses.push(status))
  t.equal(client.status, 'connecting')
  t.equal(client.sessionId, undefined)
  await statusOf(client, 'open')
  t.same(statuses, ['open'])
  t.equal(client.sessionId, sockets[0].id)
  t.equal(await client.request('whoami', null), sockets[0].id)
  client.close()
  t.equal(client.status, 'closed')
  t.equal(client.sessionId, undefined)
  t.same(statuses, ['open', 'closed'])
})

t.test('subscribe, listen, send, request, unsubscribe', async (t) => {
  const { url } = await chatServer(t)
  const alice = clientFor(t, url)
  const bob = clientFor(t, url)
  await Promise.all([alice.subscribe('room-1'), bob.subscribe('room-1')])
  t.same(alice.channels, ['room-1'])
  await alice.subscribe('room-1') // already held: resolves at once

  const received = nextEvent<{ text: string }>(bob, 'chat')
  t.equal(alice.send('chat', { text: 'hello' }, { channel: 'room-1' }), true)
  t.same(await received, { data: { text: 'hello', from: alice.sessionId }, channel: 'room-1' })

  const reply = await alice.request('chat', { text: 'four' }, { channel: 'room-1' })
  t.same(reply, { ok: true, length: 4 }, 'the ack carries what the handler returned')
  t.equal(await alice.request('quiet', 1), undefined, 'an ack without data resolves undefined')

  // on() returns its off function; a second listener is independent
  const seen: unknown[] = []
  const off = bob.on('chat', (data, meta) => seen.push([data, meta]))
  await alice.request('chat', { text: 'one' }, { channel: 'room-1' })
  await until(() => seen.length === 1, 3000, 'the second listener gets the chat')
  t.same(seen[0], [{ text: 'one', from: alice.sessionId }, { event: 'chat', channel: 'room-1' }])
  off()
  await bob.unsubscribe('room-1')
  t.same(bob.channels, [])
  await alice.request('chat', { text: 'two' }, { channel: 'room-1' })
  await bob.request('quiet', null) // a round trip: anything for bob would have arrived by now
  t.equal(seen.length, 1, 'no more events after off() and unsubscribe')
  await bob.unsubscribe('room-1') // idempotent
})

t.test('refusals reject with the error frame code (and issues for VALIDATION_FAILED)', async (t) => {
  const { url } = await chatServer(t)
  const client = clientFor(t, url)
  await t.rejects(client.subscribe('private-x'), { name: 'ChannelsClientError', code: 'FORBIDDEN', message: 'members only', channel: 'private-x' })
  await t.rejects(client.subscribe('vip'), { code: 'NOT_VIP', message: 'vips only' })
  t.same(client.channels, [], 'a refused channel is not held (nor resubscribed later)')
  await t.rejects(client.subscribe('bad name'), { code: 'INVALID_CHANNEL' }, 'checked before sending')
  t.throws(() => client.send('chat', {}, { channel: 'bad\nname' }), { code: 'INVALID_CHANNEL' })

  await client.subscribe('room-1')
  const invalid = await client.request('chat', { text: '' }, { channel: 'room-1' }).catch((err: unknown) => err)
  t.type(invalid, ChannelsClientError)
  t.match(invalid, { code: 'VALIDATION_FAILED', errors: [{ path: '/text', message: String }] })
  await t.rejects(client.request('chat', { text: 'hi' }, { channel: 'room-2' }), { code: 'NOT_SUBSCRIBED' })
  await t.rejects(client.request('nobody-listens', 1), { code: 'NO_HANDLER' })
  await t.rejects(client.request('boom', 1), { code: 'HANDLER_ERROR', message: 'the handler failed' })
  await t.rejects(client.request('chat', 1n as never), TypeError, 'data JSON cannot carry')
  await t.rejects(client.request('chat', 1n as never), { code: 'UNSERIALIZABLE' })
  t.throws(() => client.send('chat', 1n as never), { name: 'TypeError', code: 'UNSERIALIZABLE' })
})

t.test('errors without an id (after send) reach onError', async (t) => {
  const { url } = await chatServer(t)
  const client = clientFor(t, url)
  const errors: ChannelsClientError[] = []
  client.onError((error) => errors.push(error))
  await client.subscribe('room-1')
  client.send('chat', { text: 'x'.repeat(21) }, { channel: 'room-1' })
  client.send('nobody-listens', 1)
  await until(() => errors.length === 2, 3000, 'both refusals of sent frames reach onError')
  t.match(errors, [{ code: 'VALIDATION_FAILED', errors: [{ path: '/text' }] }, { code: 'NO_HANDLER' }])
})

t.test('server-side subscriptions are tracked', async (t) => {
  const { url, sockets } = await chatServer(t)
  const client = clientFor(t, url)
  await client.request('join-me', 'room-9')
  t.same(client.channels, ['room-9'])
  await sockets[0].unsubscribe('room-9')
  await until(() => client.channels.length === 0, 3000, 'the client tracks the server-side unsubscribe')
  t.pass('a server-side unsubscribe is tracked too')
})

t.test('after close(): no reconnect, requests reject CLOSED, send returns false', async (t) => {
  const { url, sockets } = await chatServer(t)
  const client = clientFor(t, url)
  await client.subscribe('room-1')
  client.close()
  await t.rejects(client.request('whoami', null), { code: 'CLOSED' })
  await t.rejects(client.subscribe('room-2'), { code: 'CLOSED' })
  t.equal(client.send('chat', { text: 'hi' }, { channel: 'room-1' }), false)
  await client.unsubscribe('room-1')
  t.same(client.channels, [])
  t.equal(sockets.length, 1)
  await until(() => sockets[0].channels.size === 0, 3000, 'the closed client\'s socket leaves its channel')
  t.equal(client.status, 'closed')
})
