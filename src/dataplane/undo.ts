/**
 * An undo list: each step that creates something on the host pushes the step
 * that removes it; `run()` performs them newest first, once, and never throws
 * (a failing undo step is reported and the rest still run). Start-up uses it so
 * a failure half-way leaves nothing behind, and stop uses the same list.
 */
export class UndoList {
  private readonly steps: { what: string; undo: () => void | Promise<void> }[] = [];

  /** Record how to remove something just created. */
  push(what: string, undo: () => void | Promise<void>): void {
    this.steps.push({ what, undo });
  }

  /** Steps still to undo (newest last). */
  get pending(): readonly string[] {
    return this.steps.map((s) => s.what);
  }

  /** Undo everything, newest first; returns the failures ("what: message"). */
  async run(): Promise<string[]> {
    const failures: string[] = [];
    for (let s = this.steps.pop(); s; s = this.steps.pop()) {
      try {
        await s.undo();
      } catch (err) {
        failures.push(`${s.what}: ${(err as Error).message}`);
      }
    }
    return failures;
  }
}
