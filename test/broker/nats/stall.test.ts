/**
 * A node process frozen (SIGSTOP: a long GC pause, a stopped VM) for longer than its TTL heals
 * by itself once thawed: its sessions are reachable by sends again and its channels get
 * cross-node publications again within seconds, without a restart.
 */
import t from 'tap'
import { socketMethods } from '../../redis/fixtures/methods.js'
import { connect, isGot } from '../../redis/nodes.js'
import { ChildNatsNode, deleteStreams, eventually, startNatsNode, uniquePrefix, withNats } from './helpers.js'

await withNats(t, async () => {
  t.test('frozen past its TTL, then thawed: reachable again within seconds', async (t) => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteStreams(prefix))
    const frozen = await ChildNatsNode.start(t, { PREFIX: prefix, NODE_TTL: '2000', COMMAND_TIMEOUT: '500', LOG_LEVEL: 'error' })
    const live = await startNatsNode(t, { prefix, nodeTtl: 2000, commandTimeout: 500 }, socketMethods)
    const onFrozen = await connect(t, frozen, ['room'])
    await eventually(async () => await live.app.send(onFrozen.sessionId, 'before', { event: 'got' }).then(() => true, () => false), 5000, 'the session is found')
    t.equal((await onFrozen.next(isGot)).data, 'before')

    frozen.pause()
    await new Promise((resolve) => setTimeout(resolve, 4000)) // twice its TTL: its registration expired
    await t.rejects(live.app.send(onFrozen.sessionId, 'while frozen', { event: 'got' }), 'a send to a frozen node fails')
    frozen.resume()
    const thawed = Date.now()
    await eventually(async () => await live.app.send(onFrozen.sessionId, 'after', { event: 'got' }).then(() => true, () => false), 10000, 'sends reach it again')
    await eventually(async () => {
      await live.app.broadcastChannel('room', 'probe', { event: 'probe' })
      return onFrozen.frames.some((frame) => frame.event === 'probe')
    }, 10000, 'channel publications reach it again')
    const healed = Date.now() - thawed
    t.ok(healed < 10000, `healed ${healed} ms after the thaw`)
    const got = onFrozen.frames.filter(isGot).map((frame) => frame.data)
    t.notOk(got.includes('while frozen'), 'the send reported failed never arrived')
  })
})
