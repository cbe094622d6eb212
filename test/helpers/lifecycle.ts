/**
 * What one test starts, ended when that test finishes, pass or fail: a database dropped, an sshd
 * stopped. In place of a module-level `let` for each and an afterEach that ends them.
 *
 * @example
 * const db = forThisTest(await freshDatabase("bk"), (d) => d.drop());
 * const sshd = forThisTest(await startSshd(), (s) => s.stop());
 */
import { onTestFinished } from "bun:test";

export function forThisTest<T>(value: T, end: (value: T) => unknown): T {
  onTestFinished(async () => {
    await end(value);
  });
  return value;
}
