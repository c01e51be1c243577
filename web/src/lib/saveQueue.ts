import { ApiError } from '../api/client';

/**
 * What the person sees about their own edits:
 * - `saving`: on its way; `saved`: the server has it;
 * - `offline`: the server could not be reached — kept here (also across a reload) and retried;
 * - `recovered`: saved after having been offline (say so once);
 * - `failed`: the server refused it (the edit is dropped and the server's state shown).
 */
export type SaveState = 'idle' | 'saving' | 'saved' | 'offline' | 'recovered' | 'failed';

/** Worth trying again later: no answer at all, a timeout, rate limiting or a server-side failure. */
export function retryable(err: unknown): boolean {
  if (!(err instanceof ApiError)) return false;
  return err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500;
}

/** Retry delays while the server is unreachable: 2 s, 4 s, 8 s, then every 15 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(15_000, 2000 * 2 ** attempt);
}

export interface SaveQueueOptions<P, R> {
  /** Sends the whole pending patch. Must be idempotent: the same patch may be sent twice. */
  send: (patch: P) => Promise<R>;
  onSaved: (result: R) => void;
  onRejected: (err: unknown) => void;
  onChange: (state: SaveState, pending: P | null) => void;
  /** Where unconfirmed edits are kept (local storage), or `null` to forget them. */
  persist: (pending: P | null) => void;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/**
 * One person's edits to their own answers, sent one at a time and in order. Edits made while a
 * request is out are merged (each field replaces the previous value, as the API's PATCH does) and
 * sent next; when the server is unreachable they stay pending and are retried with backoff, on
 * `retryNow()` (reconnect, `online`), and after a reload.
 */
export class SaveQueue<P extends object, R> {
  private pending: P | null;
  private inFlight = false;
  private attempt = 0;
  private timer: unknown = null;
  private wasOffline = false;
  private stopped = false;
  state: SaveState = 'idle';

  constructor(
    private readonly opts: SaveQueueOptions<P, R>,
    restored: P | null = null,
  ) {
    this.pending = restored;
    if (restored) {
      this.wasOffline = true;
      this.set('offline');
    }
  }

  get unsaved(): P | null {
    return this.pending;
  }

  save(patch: P) {
    this.pending = { ...(this.pending ?? ({} as P)), ...patch };
    this.opts.persist(this.pending);
    void this.flush();
  }

  /** Try now (the connection is back). */
  retryNow() {
    if (!this.pending || this.inFlight) return;
    this.attempt = 0;
    this.cancelTimer();
    void this.flush();
  }

  stop() {
    this.stopped = true;
    this.cancelTimer();
  }

  private set(state: SaveState) {
    this.state = state;
    this.opts.onChange(state, this.pending);
  }

  private cancelTimer() {
    if (this.timer !== null) (this.opts.clearTimer ?? clearTimeout)(this.timer as number);
    this.timer = null;
  }

  async flush(): Promise<void> {
    if (this.stopped || this.inFlight || !this.pending) return;
    const sent = this.pending;
    this.inFlight = true;
    if (!this.wasOffline) this.set('saving');
    let result: R;
    try {
      result = await this.opts.send(sent);
    } catch (err) {
      this.inFlight = false;
      if (this.stopped) return;
      if (retryable(err)) {
        this.wasOffline = true;
        this.set('offline');
        this.cancelTimer();
        this.timer = (this.opts.setTimer ?? setTimeout)(() => {
          this.timer = null;
          void this.flush();
        }, retryDelayMs(this.attempt++));
        return;
      }
      // Refused (e.g. the meetup was closed meanwhile): drop it so the UI shows the server's truth.
      this.pending = null;
      this.opts.persist(null);
      this.wasOffline = false;
      this.opts.onRejected(err);
      this.set('failed');
      return;
    }
    this.inFlight = false;
    this.attempt = 0;
    if (this.pending === sent) {
      this.pending = null;
      this.opts.persist(null);
    }
    this.opts.onSaved(result);
    if (this.stopped) return;
    if (this.pending) {
      void this.flush();
      return;
    }
    const recovered = this.wasOffline;
    this.wasOffline = false;
    this.set(recovered ? 'recovered' : 'saved');
  }
}
