/**
 * Reconnect policy of a room connection: what a close code means, and how long to wait.
 *
 * Pure functions, no DOM: unit-tested in node (test/backoff.test.ts).
 */

/** Close codes the crdtsync server uses (see README.md of the project). */
export const CloseCode = {
  /** We closed the socket ourselves (dispose, reconnect). */
  normal: 1000,
  /** The server dropped us because we read too slowly: reconnect. */
  tooSlow: 1013,
  /** The room was closed (eviction, rename, shutdown): reconnect at once. */
  roomClosed: 4001,
  /** The notebook was deleted: stop, close the document. */
  deleted: 4404,
  /** Our replica belongs to a history the server no longer has: never reconnect with it. */
  stale: 4409
} as const;

/** What to do after a close. */
export type CloseAction =
  /** Reconnect without waiting (unless reconnects keep failing: then back off). */
  | 'reconnect-now'
  /** Reconnect after the backoff delay. */
  | 'reconnect'
  /** Terminal: the notebook is gone. */
  | 'deleted'
  /** Terminal: the replica is stale, the window must reload. */
  | 'stale';

/** Map a websocket close code to the action the provider takes. */
export function closeAction(code: number): CloseAction {
  switch (code) {
    case CloseCode.roomClosed:
      return 'reconnect-now';
    case CloseCode.deleted:
      return 'deleted';
    case CloseCode.stale:
      return 'stale';
    default:
      // 1006 (network), 1011 (server error), 1013 (too slow), 1001 (server going away),
      // handshake refusals (403/404 surface as 1006 in browsers): retry, backing off.
      return 'reconnect';
  }
}

export interface IBackoffOptions {
  /** Delay before the first retry, in ms. */
  initialMs: number;
  /** Growth factor per failed attempt. */
  factor: number;
  /** Cap on the delay, in ms. */
  maxMs: number;
  /**
   * Fraction of the delay that is randomised, in [0, 1]: the delay is drawn from
   * [d * (1 - jitter), d], so that many windows do not reconnect in lockstep.
   */
  jitter: number;
}

export const DEFAULT_BACKOFF: IBackoffOptions = {
  initialMs: 500,
  factor: 2,
  maxMs: 30000,
  jitter: 0.5
};

/**
 * The delay before retry number `attempt` (0 for the first retry after a failure).
 *
 * `random` returns a number in [0, 1) (Math.random by default; tests pass their own).
 */
export function backoffDelay(
  attempt: number,
  options: Partial<IBackoffOptions> = {},
  random: () => number = Math.random
): number {
  const o = { ...DEFAULT_BACKOFF, ...options };
  const n = Math.max(0, Math.floor(attempt));
  // Stop multiplying once past the cap, so huge attempt numbers stay finite.
  let d = o.initialMs;
  for (let i = 0; i < n && d < o.maxMs; i++) {
    d *= o.factor;
  }
  d = Math.min(d, o.maxMs);
  const jitter = Math.min(1, Math.max(0, o.jitter));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(d * (1 - jitter * r));
}
