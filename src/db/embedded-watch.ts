/**
 * Keeps the embedded cluster up under a process that serves from it (a color). A color starts the
 * cluster when it starts, and only then; once it runs, a cluster that went away (the disk filled
 * and Postgres stopped, the OOM killer, a `db stop` by mistake) would stay away until someone
 * restarted a color by hand. So the color looks at the postmaster's PID every `everyMs` and, after
 * two looks that find none (a `db restart` passes through "down" for a moment), starts it again.
 *
 * @example
 * const watch = new EmbeddedWatch(db.embedded, () => openEmbedded(config), logger, 5_000);
 * ... at stop: await (await watch.stop()).stop();
 */
import { isAlive } from "../lib/lock-file.ts";
import type { Logger } from "../lib/log.ts";
import type { EmbeddedPostgres } from "./embedded.ts";

const LOOKS_BEFORE_START = 2;

export class EmbeddedWatch {
  private readonly timer: ReturnType<typeof setInterval>;
  private misses = 0;
  private starting: Promise<void> | undefined;

  constructor(
    private cluster: EmbeddedPostgres,
    private readonly open: () => Promise<EmbeddedPostgres>,
    private readonly log: Logger,
    everyMs: number,
  ) {
    this.timer = setInterval(() => this.look(), everyMs);
    this.timer.unref();
  }

  /** Stops looking (again is fine); returns the cluster as it stands now (the one this process started, if it had to). */
  async stop(): Promise<EmbeddedPostgres> {
    clearInterval(this.timer);
    await this.starting;
    return this.cluster;
  }

  private look(): void {
    if (this.starting) return;
    if (this.running()) {
      this.misses = 0;
      return;
    }
    if (++this.misses < LOOKS_BEFORE_START) return;
    this.log.warn("the embedded Postgres is not running; starting it again", { dir: this.cluster.dir });
    this.starting = this.open()
      .then((cluster) => {
        this.cluster = cluster; // whoever started this one stops it (decision 78)
        this.misses = 0;
        this.log.info("the embedded Postgres runs again", {
          pid: cluster.serverPid(),
          started_here: cluster.startedHere,
        });
      })
      .catch((error: unknown) => this.log.error("the embedded Postgres is down and could not be started", { error }))
      .finally(() => {
        this.starting = undefined;
      });
  }

  private running(): boolean {
    try {
      const pid = this.cluster.serverPid();
      return pid !== undefined && isAlive(pid);
    } catch {
      return false; // a postmaster.pid that is not a plain file of the account's: not a server of ours
    }
  }
}
