/**
 * stats and nodes over Redis: two nodes on one prefix see each other, a connection on one shows
 * on the other within 2 s, an admin disconnect reaches the node that holds the session, and a
 * node that closes leaves at once. Nodes on another prefix are not listed.
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyRequest } from 'fastify'
import { disconnectReason } from '../../plugin/admin/routes.js'
import { within } from '../helpers/deadline.js'
import { TestClient } from '../helpers/server.js'
import { deleteKeys, startNode, uniquePrefix, withRedis } from '../redis/helpers.js'

const authorize = (request: FastifyRequest): boolean => request.headers.authorization === 'Bearer t'

t.test('two nodes over Redis', async (t) => {
  await withRedis(t, async () => {
    const prefix = uniquePrefix()
    t.teardown(() => deleteKeys(prefix))
    const one = await startNode(t, { prefix }, undefined, { admin: { authorize } })
    const two = await startNode(t, { prefix })
    const stranger = await startNode(t, { prefix: uniquePrefix() })
    const twoId = two.app.channels.stats().node

    const nodes = await one.app.channels.nodes()
    t.same(nodes.map((node) => node.node).sort(), [one.app.channels.stats().node, twoId].sort(), 'both nodes of the prefix, no other')
    t.notOk(nodes.some((node) => node.node === stranger.app.channels.stats().node))

    const client = await TestClient.connect(two.url)
    await client.subscribe('room')
    const started = Date.now()
    for (;;) {
      const listed = (await one.app.channels.nodes()).find((node) => node.node === twoId)
      if (listed?.connections === 1 && listed.subscriptions === 1) break
      if (Date.now() - started > 2000) {
        t.fail(`the other node's connection did not show within 2 s: ${JSON.stringify(listed)}`)
        break
      }
      await sleep(50)
    }
    t.pass(`shown after ${Date.now() - started} ms`)

    const reply = await one.app.inject({
      method: 'POST', url: '/channels/admin/api/disconnect', headers: { authorization: 'Bearer t' }, payload: { sessionId: client.sessionId }
    })
    t.same(reply.json(), { here: false })
    t.same(await within(client.closed, 3000, 'the node that holds it closes it'), { code: 1008, reason: disconnectReason })

    const feed = await one.app.inject({ url: '/channels/admin/api/nodes', headers: { authorization: 'Bearer t' } })
    t.equal(feed.json().nodes.length, 2, 'the API lists both')

    await two.app.close()
    const after = await one.app.channels.nodes()
    t.same(after.map((node) => node.node), [one.app.channels.stats().node], 'the closed node left at once')
  })
})
