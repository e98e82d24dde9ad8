import type { NativePollGroup } from './binding.js';
import { requireNative } from './load-native.js';

/**
 * One epoll set for the sockets a thread reads with MessageWatchers made with
 * `{ group }`: the thread's event loop polls the set, not each socket, and a
 * member's park() stops and restarts reading it at a flag's cost (an epoll_ctl
 * only when something arrived meanwhile), where pausing a watcher on its own
 * costs a pair each time. Level-triggered: what arrives while parked is read after.
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

  close(): void {
    this.native.close();
  }
}
