/**
 * Nodes in separate processes (test/redis/fixtures/node.ts) and one in this process, on one
 * Redis and on a Redis Cluster: delivery across processes, and a session registry that forgets a node killed with
 * SIGKILL once its TTL runs out.
 */
import t from 'tap'
import { nextId, type Frame } from '../helpers/server.js'
import { ChildNode, eventually, uniquePrefix } from './helpers.js'
import { forEachTarget } from './targets.js'
import { collectAfterFence, connect, startNodes } from './nodes.js'
import { RedisKeys } from '../../plugin/broker/redis/keys.js'

const data = (frames: Frame[]): unknown[] => frames.map((frame) => frame.data)
const nodeTtl = 1000

await forEachTarget(t, async (t, target) => {
  const prefix = uniquePrefix()
  const keys = new RedisKeys(prefix)
  t.teardown(() => target.deleteKeys(prefix))
  const [child1, child2] = await Promise.all([
    ChildNode.start(t, { ...target.env, PREFIX: prefix, NODE_TTL: String(nodeTtl) }),
    ChildNode.start(t, { ...target.env, PREFIX: prefix, NODE_TTL: String(nodeTtl) })
  ])
  const [local] = await startNodes(t, 1, { ...target.broker, prefix, nodeTtl })
  const on1 = await connect(t, { url: child1.url } as never, ['room'])
  const on2 = await connect(t, { url: child2.url } as never, ['room', 'other'])
  const onLocal = await connect(t, local, ['room'])
  const all = [on1, on2, onLocal]

  t.test('out-of-band broadcasts from another process reach every socket once', async (t) => {
    await child1.post('/broadcast', { n: 1 })
    t.same((await collectAfterFence(child1, all)).map(data), [[{ n: 1 }], [{ n: 1 }], [{ n: 1 }]])
    await child2.post('/channel/other', { n: 2 })
    t.same((await collectAfterFence(child2, all)).map(data), [[], [{ n: 2 }], []])
    await local.app.broadcastChannel('room', { n: 3 }, { event: 'got' })
    t.same((await collectAfterFence(local, all)).map(data), [[{ n: 3 }], [{ n: 3 }], [{ n: 3 }]])
  })

  t.test('socket methods across processes, sender excluded', async (t) => {
    await on1.request({ type: 'message', event: 'broadcast', data: 'b', id: nextId() })
    t.same((await collectAfterFence(child1, all)).map(data), [[], ['b'], ['b']])
    await on2.request({ type: 'message', event: 'broadcastChannel', data: 'm', id: nextId() })
    t.same((await collectAfterFence(child2, all)).map(data), [['m'], [], ['m']], 'multi-channel from a child: once each')
    await onLocal.request({ type: 'message', event: 'sendAndBroadcastChannel', channel: 'room', data: 'r', id: nextId() })
    t.same((await collectAfterFence(local, all)).map(data), [['r'], ['r'], ['r']])
  })

  t.test('send reaches a session in another process', async (t) => {
    await local.app.send(on1.sessionId, 'to-1', { event: 'got' })
    t.same(await child2.post(`/send/${onLocal.sessionId}`, 'to-local'), { ok: true })
    t.same(await child2.post('/send/nobody', 'x'), { ok: false, code: 'FST_CHANNELS_NO_SOCKET' })
    const got = await collectAfterFence(child2, all)
    t.same(got.map(data), [['to-1'], [], ['to-local']])
  })

  t.test('a node killed with SIGKILL: its sessions stop being found once its TTL runs out', async (t) => {
    t.equal((await target.keys(keys.alive('*'))).length, 3, 'three live nodes')
    await child1.kill('SIGKILL')
    const killedAt = Date.now()
    const codes = new Set<string | undefined>()
    await eventually(async () => {
      try {
        await local.app.send(on1.sessionId, 'gone?')
        return false
      } catch (err) {
        // while the TTL runs the registry still names the dead node: the send is refused as unavailable
        const code = (err as { code?: string }).code
        codes.add(code)
        return code === 'FST_CHANNELS_NO_SOCKET'
      }
    }, nodeTtl + 3000, 'the dead node\'s session expires')
    t.ok(Date.now() - killedAt <= nodeTtl + 3000)
    codes.delete('FST_CHANNELS_NO_SOCKET')
    codes.delete('FST_CHANNELS_BROKER_UNAVAILABLE')
    t.same([...codes], [], 'only "unavailable" until the TTL ran out, then "no socket"')
    t.equal((await target.keys(keys.alive('*'))).length, 2, 'its liveness key expired')
    t.equal((await target.keys(keys.sessions('*'))).length, 2, 'its session set expired (or was pruned)')
    t.equal(await target.admin.scard(keys.nodes), 2, 'the lookup pruned it from the node set')
    t.same(await child2.post(`/send/${on1.sessionId}`, 'x'), { ok: false, code: 'FST_CHANNELS_NO_SOCKET' })

    // the survivors still talk
    await child2.post('/broadcast', 'still here')
    t.same((await collectAfterFence(child2, [on2, onLocal])).map(data), [['still here'], ['still here']])
  })

  t.test('a node that shuts down cleanly unregisters at once', async (t) => {
    await child2.kill('SIGTERM')
    t.equal(child2.child.exitCode, 0, 'closed cleanly')
    await t.rejects(local.app.send(on2.sessionId, 'x'), { code: 'FST_CHANNELS_NO_SOCKET' })
    t.equal((await target.keys(keys.alive('*'))).length, 1)
    t.equal((await target.keys(keys.sessions('*'))).length, 1)
  })
})
