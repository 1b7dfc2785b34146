/**
 * The log of failed broker publishes (plain ones, and history ones in their own wording). While
 * the broker is down every publish fails, and one warn line per publish would bury the log
 * under one line per message. So a run of failures (from the first failed publish to the next
 * one that goes through) is logged as: one warn line at its first failure, one warn line with a
 * count every `summaryMs` while it lasts (on the next failure after that), and one info line
 * with the total when a publish goes through again (or the broker is closed). Callers are
 * unaffected: a failed publish still resolves after local delivery.
 */
import type { FastifyBaseLogger } from 'fastify'

/** How often a run of failed publishes adds a line with the count, at most. */
export const publishFailureSummaryMs = 10_000

/** The four lines of a run, so each kind of publish says what it lost. */
export interface FailureWording {
  failed: string
  stillFailing: string
  worksAgain: string
  closed: string
}

export const brokerPublishWording: FailureWording = {
  failed: 'channels: broker publish failed; delivered locally only',
  stillFailing: 'channels: broker publish still failing; delivered locally only',
  worksAgain: 'channels: broker publish works again',
  closed: 'channels: broker closed while publishes were failing'
}

/** A failed history publish is delivered locally too, but outside the stream: no offset. */
export const historyPublishWording: FailureWording = {
  failed: 'channels: history publish failed; delivered locally only, without an offset',
  stillFailing: 'channels: history publish still failing; delivered locally only, without an offset',
  worksAgain: 'channels: history publish works again',
  closed: 'channels: broker closed while history publishes were failing'
}

export class PublishFailureLog {
  /** when the current run of failures began; undefined while publishes go through */
  private runStartedAt: number | undefined
  /** failures of the current run, and those of them no line has counted yet */
  private runFailures = 0
  private unreported = 0
  private lastLineAt = 0

  constructor (
    private readonly log: FastifyBaseLogger,
    private readonly summaryMs = publishFailureSummaryMs,
    private readonly now: () => number = Date.now,
    private readonly wording: FailureWording = brokerPublishWording
  ) {}

  /** `context`: what failed, for the first line of the run and each summary (kind, channel). */
  failed (err: unknown, context: Record<string, unknown>): void {
    const at = this.now()
    this.runFailures++
    if (this.runStartedAt === undefined) {
      this.runStartedAt = at
      this.lastLineAt = at
      this.log.warn({ err, ...context }, this.wording.failed)
      return
    }
    this.unreported++
    if (at - this.lastLineAt < this.summaryMs) return
    this.lastLineAt = at
    this.log.warn({ err, ...context, dropped: this.unreported, failingMs: at - this.runStartedAt }, this.wording.stillFailing)
    this.unreported = 0
  }

  /** A publish went through: the run of failures (if any) is over. */
  succeeded (): void {
    this.endRun(this.wording.worksAgain)
  }

  /** The broker is closed: a run still under way gets its closing line now. */
  close (): void {
    this.endRun(this.wording.closed)
  }

  private endRun (msg: string): void {
    if (this.runStartedAt === undefined) return
    this.log.info({ dropped: this.runFailures, failingMs: this.now() - this.runStartedAt }, msg)
    this.runStartedAt = undefined
    this.runFailures = 0
    this.unreported = 0
  }
}
