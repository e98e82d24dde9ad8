/**
 * Requests waiting for a worker, one FIFO per flow (a client connection), served round
 * robin: the next request taken is the oldest of the flow after the one served last. A
 * connection that floods therefore waits behind its own requests, and a connection that
 * sends one request waits for at most one request of each other connection.
 */
class Flow<T> {
  readonly items: (T | undefined)[] = [];
  head = 0;

  constructor(readonly key: object) {}

  get size(): number {
    return this.items.length - this.head;
  }

  shift(): T {
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined;
    // Compact now and then instead of Array.shift(), which is O(n) per call.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }
}

export class FairQueue<T> {
  private readonly flows = new Map<object, Flow<T>>();
  /** Flows with requests waiting, in the order they get their next turn. */
  private readonly turns: Flow<T>[] = [];
  private turn = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(flow: object, item: T): void {
    let queue = this.flows.get(flow);
    if (!queue) {
      queue = new Flow<T>(flow);
      this.flows.set(flow, queue);
    }
    if (queue.size === 0) this.turns.push(queue);
    queue.items.push(item);
    this.count++;
  }

  /** The request whose turn it is, without taking it; undefined when none waits. */
  peek(): T | undefined {
    if (this.count === 0) return undefined;
    const queue = this.turns[this.turn % this.turns.length]!;
    return queue.items[queue.head];
  }

  /** Takes the request peek() returned and passes the turn to the next flow. */
  shift(): T {
    this.turn %= this.turns.length;
    const queue = this.turns[this.turn]!;
    const item = queue.shift();
    this.count--;
    if (queue.size > 0) this.turn++;
    else {
      this.turns.splice(this.turn, 1);
      this.flows.delete(queue.key);
    }
    if (this.turns.length === 0) this.turn = 0;
    return item;
  }
}
