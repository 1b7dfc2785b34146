/**
 * The admin page's HTML and stylesheet. Plain text served as it is (no build step for users):
 * the markup is a skeleton that page-script.ts fills from the live feed; the stylesheet lays it
 * out in cards that stack on a phone and tables that scroll sideways when they do not fit.
 */

const escapes: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (char) => escapes[char])
}

/**
 * The page for the admin routes under `base` (the `admin.path` option). `query` is the page
 * request's own query string (`?token=...`, or ''): its assets are asked for with it, as the
 * script asks for everything else, so an `authorize` that reads the query lets them through.
 */
export function adminHtml (base: string, query = ''): string {
  const at = escapeHtml(base)
  const q = escapeHtml(query)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>fastify-channels admin</title>
<link rel="stylesheet" href="${at}/admin.css${q}">
<script type="module" src="${at}/admin.js${q}"></script>
</head>
<body data-base="${at}">
<header>
  <h1>fastify-channels admin</h1>
  <p id="status" data-status="connecting" role="status">connecting…</p>
</header>
<main>
  <section class="totals" aria-label="totals">
    <div><span class="label">nodes</span><span class="value" id="total-nodes">–</span></div>
    <div><span class="label">connections</span><span class="value" id="total-connections">–</span></div>
    <div><span class="label">subscriptions</span><span class="value" id="total-subscriptions">–</span></div>
    <div><span class="label">publications/s</span><span class="value" id="total-publications">–</span></div>
    <div><span class="label">deliveries/s</span><span class="value" id="total-deliveries">–</span></div>
  </section>
  <section class="card wide">
    <h2>Nodes</h2>
    <div class="scroll"><table id="nodes">
      <thead><tr><th>node</th><th>host</th><th>connections</th><th>subscriptions</th><th>channels</th><th>publications/s</th><th>deliveries/s</th><th>memory</th><th>uptime</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section class="card">
    <h2>Busiest channels</h2>
    <div class="scroll"><table id="busiest">
      <thead><tr><th>channel</th><th>publications/s</th><th>subscribers</th></tr></thead>
      <tbody></tbody>
    </table></div>
    <p class="hint">Publications per second over the last second, summed over the nodes; subscribers on the nodes listed.</p>
  </section>
  <section class="card">
    <h2>Channel</h2>
    <form id="channel-form">
      <input id="channel-input" name="channel" placeholder="channel name" autocomplete="off" required maxlength="200">
      <button type="submit">Show</button>
    </form>
    <div id="channel-view"></div>
  </section>
  <section class="card">
    <h2>Disconnect</h2>
    <form id="disconnect-form">
      <input id="session-input" name="session" placeholder="session id" autocomplete="off" required maxlength="200">
      <button type="submit" class="danger">Disconnect session</button>
    </form>
    <form id="disconnect-user-form">
      <input id="user-input" name="user" placeholder="user id" autocomplete="off" required maxlength="1024">
      <button type="submit" class="danger">Disconnect user</button>
    </form>
    <p id="disconnect-result" role="status"></p>
  </section>
  <section class="card wide">
    <h2>Recent errors and slow consumers</h2>
    <div class="scroll"><table id="events">
      <thead><tr><th>time</th><th>node</th><th>kind</th><th>message</th><th>session</th><th>channel</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
</main>
</body>
</html>
`
}

export const adminCss = `:root { color-scheme: light dark; --line: #8884; --accent: #2b6cb0; --bad: #c53030; font-family: system-ui, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; padding: 0 1rem 2rem; line-height: 1.4; }
header { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: .5rem; }
h1 { font-size: 1.3rem; margin: 1rem 0 .5rem; }
h2 { font-size: 1.05rem; margin: 0 0 .5rem; }
#status { margin: 0; padding: .15rem .6rem; border-radius: 1rem; border: 1px solid var(--line); font-size: .9rem; }
#status[data-status="live"] { border-color: #2f855a; color: #2f855a; }
#status[data-status="refused"], #status[data-status="lost"] { border-color: var(--bad); color: var(--bad); }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 26rem), 1fr)); gap: 1rem; }
.totals { grid-column: 1 / -1; display: grid; grid-template-columns: repeat(auto-fit, minmax(8rem, 1fr)); gap: .5rem; }
.totals div { border: 1px solid var(--line); border-radius: .5rem; padding: .5rem .75rem; }
.label { display: block; font-size: .8rem; opacity: .75; }
.value { font-size: 1.4rem; font-variant-numeric: tabular-nums; }
.card { border: 1px solid var(--line); border-radius: .5rem; padding: .75rem; min-width: 0; }
.wide { grid-column: 1 / -1; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
#nodes th:nth-child(n+3), #busiest th:nth-child(n+2) { text-align: right; }
td.message { white-space: normal; min-width: 14rem; word-break: break-word; }
tr.self td:first-child::after { content: " (this node)"; opacity: .7; }
form { display: flex; flex-wrap: wrap; gap: .5rem; margin-bottom: .5rem; }
input { flex: 1 1 12rem; min-width: 0; padding: .45rem; font: inherit; }
button { padding: .45rem .9rem; font: inherit; cursor: pointer; }
button.danger { color: #fff; background: var(--bad); border: 0; border-radius: .3rem; }
button.link { padding: 0; border: 0; background: none; color: var(--accent); text-decoration: underline; }
.hint { font-size: .8rem; opacity: .75; margin: .4rem 0 0; }
h3 { font-size: .95rem; margin: .6rem 0 .2rem; word-break: break-word; }
pre { white-space: pre-wrap; word-break: break-word; margin: .2rem 0; font-size: .85rem; }
`
