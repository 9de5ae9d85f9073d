/**
 * Runs async jobs one after another. A card can only hold one conversation at a time:
 * interleaving two drivers' APDUs would corrupt both (selected file, verified PIN, SCP03
 * counters), so every operation on a card goes through that card's queue.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  get length(): number {
    return this.pending;
  }

  run<T>(job: () => Promise<T>): Promise<T> {
    this.pending++;
    const result = this.tail.then(job, job);
    // The chain must survive a failed job, or one error would block the card forever.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result.finally(() => {
      this.pending--;
    });
  }
}
