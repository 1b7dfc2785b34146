/**
 * The admin page's script. It runs in the browser, not here: `adminScript` is served as the
 * source of `adminPageScript` (a function that imports nothing and uses no module-level name,
 * type-checked and linted with the plugin, compiled by `tsc` like every other module), so users
 * build nothing.
 *
 * The page follows the live feed (Server-Sent Events: one `nodes` event a second) and asks the
 * API for a channel's presence and history and for disconnects. Every request carries the
 * page's own query string and cookies, so an `authorize` that reads a token from either sees it
 * on every request. Everything shown is set as text, never as HTML: channel names, error
 * messages and session ids come from clients.
 */

/** The page's script, as served (`admin.js`). */
export function adminScript (): string {
  // `__name`: a bundler that keeps function names (esbuild's keepNames) may have wrapped the
  // inner functions in calls to its module-level helper; this one stands in for it.
  return `const __name = (target) => target;\n(${adminPageScript.toString()})();\n`
}

export function adminPageScript (): void {
  interface NodeEvent { at: number, kind: string, message: string, sessionId?: string, channel?: string }
  interface BusyChannel { channel: string, perSecond: number, subscribers: number }
  interface NodeStats {
    node: string
    host: string
    pid: number
    uptime: number
    memory: number
    connections: number
    subscriptions: number
    channels: number
    publicationsPerSecond: number
    deliveriesPerSecond: number
    busiest: BusyChannel[]
    events: NodeEvent[]
  }
  interface Feed { at: number, nodes: NodeStats[] }
  interface PresenceEntry { ref: string, meta: unknown }
  interface ChannelView {
    channel: string
    subscribers: number
    presence: Record<string, PresenceEntry[]> | null
    history: { epoch: string, offset: number, messages: Array<{ offset: number, event: string, data: unknown }> } | null
  }

  const base = document.body.dataset.base ?? ''
  const maxEvents = 50

  function byId<T extends HTMLElement> (id: string): T {
    const element = document.getElementById(id)
    if (element === null) throw new Error(`admin page: no #${id}`)
    return element as T
  }

  /** An API address under the page's base, with the page's own query string (a token, say). */
  function apiUrl (path: string, params: Record<string, string> = {}): string {
    const url = new URL(base + path + location.search, location.href)
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value)
    return url.toString()
  }

  function setStatus (state: string, text: string): void {
    const status = byId('status')
    status.dataset.status = state
    status.textContent = text
  }

  function cell (text: string | number, className = '', field = ''): HTMLTableCellElement {
    const td = document.createElement('td')
    td.textContent = String(text)
    if (className !== '') td.className = className
    if (field !== '') td.dataset.field = field
    return td
  }

  function fillTable (id: string, rows: HTMLTableRowElement[]): void {
    byId<HTMLTableElement>(id).tBodies[0].replaceChildren(...rows)
  }

  function shortId (id: string): string {
    return id.slice(0, 8)
  }

  function bytes (n: number): string {
    return `${(n / 1048576).toFixed(1)} MB`
  }

  function duration (seconds: number): string {
    const h = Math.floor(seconds / 3600)
    const m = Math.floor((seconds % 3600) / 60)
    return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${seconds % 60}s` : `${seconds}s`
  }

  function rate (n: number): string {
    return n.toFixed(1)
  }

  function renderTotals (nodes: NodeStats[]): void {
    const sum = (pick: (node: NodeStats) => number): number => nodes.reduce((total, node) => total + pick(node), 0)
    byId('total-nodes').textContent = String(nodes.length)
    byId('total-connections').textContent = String(sum((node) => node.connections))
    byId('total-subscriptions').textContent = String(sum((node) => node.subscriptions))
    byId('total-publications').textContent = rate(sum((node) => node.publicationsPerSecond))
    byId('total-deliveries').textContent = rate(sum((node) => node.deliveriesPerSecond))
  }

  function renderNodes (nodes: NodeStats[]): void {
    fillTable('nodes', nodes.map((node, index) => {
      const row = document.createElement('tr')
      row.dataset.node = node.node
      if (index === 0) row.className = 'self'
      row.append(
        cell(shortId(node.node), '', 'node'), cell(`${node.host}:${node.pid}`, '', 'host'),
        cell(node.connections, 'num', 'connections'), cell(node.subscriptions, 'num', 'subscriptions'),
        cell(node.channels, 'num', 'channels'), cell(rate(node.publicationsPerSecond), 'num', 'publications'),
        cell(rate(node.deliveriesPerSecond), 'num', 'deliveries'), cell(bytes(node.memory), 'num', 'memory'),
        cell(duration(node.uptime), 'num', 'uptime'))
      return row
    }))
  }

  function renderBusiest (nodes: NodeStats[]): void {
    const merged = new Map<string, { perSecond: number, subscribers: number }>()
    for (const node of nodes) {
      for (const busy of node.busiest) {
        const entry = merged.get(busy.channel) ?? { perSecond: 0, subscribers: 0 }
        entry.perSecond += busy.perSecond
        entry.subscribers += busy.subscribers
        merged.set(busy.channel, entry)
      }
    }
    const top = [...merged].sort((a, b) => b[1].perSecond - a[1].perSecond).slice(0, 10)
    fillTable('busiest', top.map(([channel, entry]) => {
      const row = document.createElement('tr')
      row.dataset.channel = channel
      const name = document.createElement('td')
      const link = document.createElement('button')
      link.type = 'button'
      link.className = 'link'
      link.textContent = channel
      link.addEventListener('click', () => { showChannel(channel).catch(channelFailed) })
      name.append(link)
      row.append(name, cell(rate(entry.perSecond), 'num', 'publications'), cell(entry.subscribers, 'num', 'subscribers'))
      return row
    }))
  }

  function renderEvents (nodes: NodeStats[]): void {
    const events = nodes.flatMap((node) => node.events.map((event) => ({ ...event, node: node.node })))
      .sort((a, b) => b.at - a.at).slice(0, maxEvents)
    fillTable('events', events.map((event) => {
      const row = document.createElement('tr')
      row.dataset.kind = event.kind
      const session = cell('', '', 'session')
      if (event.sessionId !== undefined) {
        const pick = document.createElement('button')
        pick.type = 'button'
        pick.className = 'link'
        pick.textContent = event.sessionId
        pick.title = 'disconnect this session…'
        const sessionId = event.sessionId
        pick.addEventListener('click', () => { byId<HTMLInputElement>('session-input').value = sessionId })
        session.append(pick)
      }
      row.append(cell(new Date(event.at).toLocaleTimeString(), '', 'time'), cell(shortId(event.node)), cell(event.kind),
        cell(event.message, 'message'), session, cell(event.channel ?? ''))
      return row
    }))
  }

  function render (feed: Feed): void {
    renderTotals(feed.nodes)
    renderNodes(feed.nodes)
    renderBusiest(feed.nodes)
    renderEvents(feed.nodes)
    setStatus('live', `live · ${new Date(feed.at).toLocaleTimeString()}`)
  }

  /** Why a request of the page failed, in a few words (401 means `authorize` said no). */
  function refusal (status: number): string {
    return status === 401 ? 'not authorized (401)' : `failed (HTTP ${status})`
  }

  // ---- the live feed ---------------------------------------------------------------------

  let feed: EventSource | undefined
  function follow (): void {
    feed = new EventSource(apiUrl('/api/feed'))
    feed.addEventListener('nodes', (event) => { render(JSON.parse((event as MessageEvent<string>).data) as Feed) })
    feed.addEventListener('error', () => {
      if (feed?.readyState !== EventSource.CLOSED) {
        setStatus('lost', 'reconnecting…')
        return
      }
      // Closed for good (the server answered, but not with a stream): find out why, then try again.
      fetch(apiUrl('/api/nodes'), { credentials: 'same-origin' }).then((reply) => {
        setStatus(reply.ok ? 'lost' : 'refused', reply.ok ? 'reconnecting…' : refusal(reply.status))
      }).catch(() => setStatus('lost', 'server unreachable, retrying…'))
      setTimeout(follow, 3000)
    })
  }

  // ---- a channel -------------------------------------------------------------------------

  function block (title: string, lines: string[]): HTMLElement {
    const section = document.createElement('div')
    const heading = document.createElement('h3')
    heading.textContent = title
    section.append(heading)
    for (const line of lines) {
      const pre = document.createElement('pre')
      pre.textContent = line
      section.append(pre)
    }
    return section
  }

  async function showChannel (channel: string): Promise<void> {
    byId<HTMLInputElement>('channel-input').value = channel
    const view = byId('channel-view')
    view.replaceChildren(block(`${channel}: loading…`, []))
    const reply = await fetch(apiUrl('/api/channel', { name: channel }), { credentials: 'same-origin' })
    if (!reply.ok) {
      const body = await reply.json().catch(() => ({})) as { message?: string }
      view.replaceChildren(block(`${channel}: ${refusal(reply.status)}`, body.message === undefined ? [] : [body.message]))
      return
    }
    const data = await reply.json() as ChannelView
    const parts = [block(`${data.channel}: ${data.subscribers} subscriber(s) on this node`, [])]
    if (data.presence === null) parts.push(block('presence: not a presence channel', []))
    else {
      parts.push(block(`presence: ${Object.keys(data.presence).length} key(s)`,
        Object.entries(data.presence).map(([key, entries]) => `${key} × ${entries.length}: ${entries.map((entry) => JSON.stringify(entry.meta)).join(', ')}`)))
    }
    if (data.history === null) parts.push(block('history: not a history channel', []))
    else {
      parts.push(block(`history: offset ${data.history.offset}, epoch ${data.history.epoch}, last ${data.history.messages.length}`,
        data.history.messages.map((message) => `#${message.offset} ${message.event}: ${JSON.stringify(message.data)}`)))
    }
    view.replaceChildren(...parts)
  }

  function channelFailed (): void {
    byId('channel-view').replaceChildren(block('channel: the server could not be reached', []))
  }

  byId('channel-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const channel = byId<HTMLInputElement>('channel-input').value.trim()
    if (channel !== '') showChannel(channel).catch(channelFailed)
  })

  // ---- disconnect ------------------------------------------------------------------------

  /** Posts one disconnect (`{ sessionId }` or `{ userId }`) and shows what `done` makes of the answer. */
  const disconnect = (target: { sessionId: string } | { userId: string }, done: (body: { here?: boolean, sessions?: number }) => string): void => {
    const result = byId('disconnect-result')
    result.textContent = 'disconnecting…'
    fetch(apiUrl('/api/disconnect'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(target)
    }).then(async (reply) => {
      if (!reply.ok) {
        result.textContent = `disconnect ${refusal(reply.status)}`
        return
      }
      result.textContent = done(await reply.json() as { here?: boolean, sessions?: number })
    }).catch(() => { result.textContent = 'disconnect failed: server unreachable' })
  }

  byId('disconnect-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const sessionId = byId<HTMLInputElement>('session-input').value.trim()
    if (sessionId === '' || !confirm(`Disconnect session ${sessionId}? Its client is closed with 1008 and does not reconnect by itself.`)) return
    disconnect({ sessionId }, (body) => body.here === true
      ? `session ${sessionId} closed (it was on this node)`
      : `asked every node to close session ${sessionId}`)
  })

  byId('disconnect-user-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const userId = byId<HTMLInputElement>('user-input').value.trim()
    if (userId === '' || !confirm(`Disconnect every session of user ${userId}, on every node? Its clients are closed with 1008 and do not reconnect by themselves.`)) return
    disconnect({ userId }, (body) => `user ${userId}: ${body.sessions ?? 0} session(s) closed`)
  })

  follow()
}
