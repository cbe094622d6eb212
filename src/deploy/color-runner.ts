/**
 * What a deploy asks of the service manager that keeps the colors alive (launchd, systemd or child
 * processes: src/services implements it, the CLI hands it in), so deploy imports nothing above it.
 */
import type { Color } from "../lib/colors.ts";

export interface ColorRunner {
  /** Stops the color if it runs and starts it on the release it now points at. */
  restart(color: Color): Promise<void>;
  stop(color: Color): Promise<void>;
  status(color: Color): Promise<{ running: boolean }>;
}
