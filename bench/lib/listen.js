// @ts-check
/**
 * Every benchmark server listens the same way: on the given loopback host, on a free port.
 */

/**
 * @param {import('fastify').FastifyInstance} app
 * @param {string} host
 * @returns {Promise<number>} the port
 */
export async function listenOnFreePort (app, host) {
  await app.listen({ host, port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return address.port
}
