import type { NativePollGroup } from './binding.js';
import { requireNative } from './load-native.js';

/**
 * One epoll set for the sockets a thread reads with MessageWatchers made with
 * `{ group }`: the thread's event loop polls the set, not each socket, so
 * pause() and resume() stop and restart reading on all of them at once for at
 * most one epoll_ctl pair, where pausing each watcher costs a pair per socket.
 * Level-triggered: what arrives while paused is read after resume().
 *
 * A member's own pause() or resume() takes it out of the group for good. Close the
 * group when the thread no longer reads (it is also closed when the thread exits).
 */
export class PollGroup {
  readonly native: NativePollGroup;

  constructor() {
    const { PollGroup: Native } = requireNative();
    this.native = new Native();
  }

  /** Stops reading on every member (idempotent): what the peers send waits in the kernel. */
  pause(): void {
    this.native.pause();
  }

  /** Reads again (idempotent). */
  resume(): void {
    this.native.resume();
  }

  close(): void {
    this.native.close();
  }
}
