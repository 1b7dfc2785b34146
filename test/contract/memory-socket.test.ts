/**
 * The in-memory connection behind inject(): bytes cross in order and never inside the
 * writer's call; an end closes both; a destroyed end is a dropped connection.
 */
import t from 'tap'
import { once } from 'node:events'
import type { Duplex } from 'node:stream'
import { injectedAddress, memoryConnection } from '../../plugin/contract/memory-socket.js'
import { within } from '../helpers/deadline.js'

function collect (stream: Duplex): () => string {
  let text = ''
  stream.on('data', (chunk: Buffer) => { text += chunk.toString() })
  return () => text
}

t.test('what one end writes the other reads, in order, on a later tick', async (t) => {
  const { client, server } = memoryConnection()
  const read = collect(server)
  client.write('one ')
  client.write(Buffer.from('two '))
  t.equal(read(), '', 'nothing arrives inside write()')
  client.write('three')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(read(), 'one two three')
  t.equal((server as Duplex & { remoteAddress?: string }).remoteAddress, injectedAddress)
  client.destroy()
  await within(once(server, 'close'), 3000, 'destroying one end closes the other')
})

t.test('end() on one side ends the other (no half-open connection) and both close', async (t) => {
  const { client, server } = memoryConnection()
  const fromClient = collect(server)
  const fromServer = collect(client)
  server.write('bye')
  server.end()
  client.write('late but fine') // the client may still write until it sees the EOF
  await within(Promise.all([once(client, 'close'), once(server, 'close')]), 3000, 'end() on one side closes both')
  t.equal(fromServer(), 'bye')
  t.equal(fromClient(), 'late but fine')
  t.ok(client.destroyed && server.destroyed)
})

t.test('a destroyed end is a dropped connection: the peer reads what was sent, then EOF, then closes', async (t) => {
  const { client, server } = memoryConnection()
  const fromServer = collect(client)
  client.on('error', (err) => t.fail(`no error expected: ${String(err)}`))
  server.write('answer')
  server.destroy()
  client.write('into the void') // dropped, as the kernel drops data for a reset connection
  await within(once(client, 'close'), 3000, 'the peer of a destroyed end closes')
  t.equal(fromServer(), 'answer')
})

t.test('strings are written in their encoding, as bytes', async (t) => {
  const { client, server } = memoryConnection()
  const chunks: Buffer[] = []
  server.on('data', (chunk: Buffer) => chunks.push(chunk))
  client.write('é', 'latin1')
  client.write('é')
  await new Promise((resolve) => setImmediate(resolve))
  t.same([...Buffer.concat(chunks)], [0xe9, 0xc3, 0xa9])
  client.destroy()
  await once(server, 'close')
})

t.test('the net.Socket methods that servers and clients call chain like net.Socket\'s', async (t) => {
  const { client, server } = memoryConnection()
  const end = server as Duplex & Record<'setNoDelay' | 'setKeepAlive' | 'setTimeout' | 'ref' | 'unref', () => unknown>
  for (const method of ['setNoDelay', 'setKeepAlive', 'setTimeout', 'ref', 'unref'] as const) t.equal(end[method](), server, method)
  t.equal((server as Duplex & { remotePort?: number }).remotePort, 0)
  server.resume()
  client.destroy()
  await once(server, 'close')
})
