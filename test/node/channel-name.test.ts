/** The server-side channel-name check (plugin/node/channel-name.ts); the rule itself is tested in test/schemas. */
import t from 'tap'
import { checkedChannel } from '../../plugin/node/server.js'
import { InvalidChannelError } from '../../plugin/index.js'

t.test('a valid name comes back; a bad one throws FST_CHANNELS_INVALID_CHANNEL with the reason', async (t) => {
  t.equal(checkedChannel('room-1'), 'room-1')
  for (const bad of ['', 'a b', 'tab\there', 'x'.repeat(201)]) {
    t.throws(() => checkedChannel(bad), { code: 'FST_CHANNELS_INVALID_CHANNEL' }, JSON.stringify(bad.slice(0, 10)))
  }
  t.throws(() => checkedChannel('a b'), InvalidChannelError)
  t.throws(() => checkedChannel('a b'), { message: /white-space/ }, 'the reason is in the message')
})
