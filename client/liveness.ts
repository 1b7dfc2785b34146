/**
 * Liveness of the current connection (docs/client.md, "Connection life"): a path can die silently (a sleeping
 * laptop, a NAT that dropped its mapping: no FIN, no data), and a WebSocket then looks open
 * forever. After `interval` ms in which nothing arrived, the client pings; when nothing
 * arrives within `interval` ms after that, the path is dead and the client reconnects. The
 * same watch covers the handshake: a `welcome` that does not come in time is a failed try.
 */

export type LivenessState = 'off' | 'awaitingWelcome' | 'listening' | 'pinged'

export interface LivenessOwner {
  /** sends a ping frame on the current connection */
  ping (): void
  /** the connection is dead (or never welcomed): drop it and reconnect */
  dead (reason: string): void
}

export class Liveness {
  state: LivenessState = 'off'
  private lastHeard = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor (
    private readonly owner: LivenessOwner,
    /** ms of silence before a ping, and ms to wait for any frame after it; false: no pings */
    private readonly interval: number | false,
    /** ms a new connection may take to send its welcome */
    private readonly connectTimeout: number
  ) {}

  /** A WebSocket was created: its welcome must come within the connect timeout. */
  connecting (): void {
    this.move('awaitingWelcome', this.connectTimeout)
  }

  /** The welcome came: watch for silence. */
  welcomed (): void {
    this.lastHeard = Date.now()
    if (this.interval === false) this.stop()
    else this.move('listening', this.interval)
  }

  /** Any frame arrived: the path works. */
  heard (): void {
    this.lastHeard = Date.now()
    if (this.state === 'pinged') this.state = 'listening' // the armed timer re-checks the silence
  }

  stop (): void {
    this.state = 'off'
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  private move (state: LivenessState, wait: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.state = state
    this.timer = setTimeout(() => this.check(), wait)
    // In Node, a client waiting for data must not keep the process alive on its own.
    ;(this.timer as { unref?: () => void }).unref?.()
  }

  private check (): void {
    this.timer = undefined
    const interval = this.interval === false ? 0 : this.interval
    switch (this.state) {
      case 'awaitingWelcome':
        this.state = 'off'
        this.owner.dead(`no welcome within ${this.connectTimeout} ms`)
        return
      case 'listening': {
        const silent = Date.now() - this.lastHeard
        if (silent < interval) return this.move('listening', interval - silent)
        this.owner.ping()
        this.move('pinged', interval)
        return
      }
      case 'pinged':
        this.state = 'off'
        this.owner.dead(`no frame within ${interval} ms after a ping`)
    }
  }
}
