/**
 * The example chat turns the admin page on behind ADMIN_TOKEN (the `adminToken` option), and
 * serves none without a token.
 */
import t from 'tap'
import { buildChatApp } from '../../example-chat/server.js'

t.test('the chat\'s admin page is behind its token', async (t) => {
  const saved = process.env.ADMIN_TOKEN
  delete process.env.ADMIN_TOKEN
  t.teardown(() => { if (saved !== undefined) process.env.ADMIN_TOKEN = saved })

  const open = await buildChatApp()
  t.teardown(() => open.close())
  t.equal((await open.inject('/channels/admin?token=')).statusCode, 404, 'no token: no admin page')

  const app = await buildChatApp({ adminToken: 'chat-admin' })
  t.teardown(() => app.close())
  t.equal((await app.inject('/channels/admin')).statusCode, 401)
  t.equal((await app.inject('/channels/admin?token=wrong')).statusCode, 401)
  t.equal((await app.inject('/channels/admin?token=chat-admin-and-more')).statusCode, 401)
  const page = await app.inject('/channels/admin?token=chat-admin')
  t.equal(page.statusCode, 200)
  t.match(page.body, 'src="/channels/admin/admin.js?token=chat-admin"')
  t.equal((await app.inject('/channels/admin/api/nodes?token=chat-admin')).json().nodes.length, 1)

  process.env.ADMIN_TOKEN = 'from-env'
  const fromEnv = await buildChatApp()
  t.teardown(() => fromEnv.close())
  t.equal((await fromEnv.inject('/channels/admin?token=from-env')).statusCode, 200, 'ADMIN_TOKEN from the environment')
})
