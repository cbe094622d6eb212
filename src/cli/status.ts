import { loadConfig } from "../config/load.ts";
import { CONFIG_OPTION, type Command, intFlag, JSON_OPTION, stringFlag } from "../lib/cli.ts";
import { EXIT, UsageError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { useSystemPathAsRoot } from "../lib/program.ts";
import { untilStopSignal } from "../lib/signals.ts";
import { proxySettings } from "../proxy/settings.ts";

/** Where `status --serve` listens unless --port says otherwise. */
const DEFAULT_STATUS_PORT = 3713;

export const statusCommand: Command = {
  name: "status",
  summary: "live color, health, Postgres, last deploy, backup ages, public metadata, disk on this machine",
  usage: "[--json] [--serve [--port N]] [--config DIR]",
  details: `Reads the proxy over its admin socket, asks each color's /healthz, reads the deploy journal and the
backup status file, fetches the OAuth protected resource metadata through the local proxy with the
public Host (no tunnel, no certificate), and checks free disk space. It changes nothing.

--serve keeps running and serves the status page (latency of the last hour, backup ages, the checks)
on http://127.0.0.1:PORT/ and the report on /status.json; loopback only (use ssh -L from elsewhere).
The proxy serves the same page on its admin socket at GET /page.

Exit codes: 0 green, 11 yellow (something needs attention), 12 red (something is down).`,
  options: {
    json: JSON_OPTION,
    serve: { type: "boolean", description: "serve the status page on 127.0.0.1 until stopped" },
    port: { type: "string", value: "N", description: `port for --serve (default ${DEFAULT_STATUS_PORT})` },
    config: CONFIG_OPTION,
  },
  run: async (inv) => {
    useSystemPathAsRoot(); // the deploy account's status key starts it through sudo (install.sh's sudoers)
    if (inv.values.port !== undefined && !inv.values.serve)
      throw new UsageError("BAD_FLAG", `${inv.path}: --port goes with --serve`, `see '${inv.path} --help'`);
    const config = loadConfig({ dir: stringFlag(inv, "config") });
    const { socketProxySource } = await import("../status/proxy-source.ts");
    const proxy = socketProxySource(proxySettings(config).adminSocket);
    if (inv.values.serve) {
      const { serveStatusPage } = await import("../status/serve.ts");
      const server = serveStatusPage(config, proxy, intFlag(inv, "port", 0) ?? DEFAULT_STATUS_PORT);
      log.info("status page listening", { url: `http://127.0.0.1:${server.port}/` });
      await untilStopSignal(() => server.stop(true));
      return EXIT.ok;
    }
    const [{ collectStatus }, { renderStatusText }, { STATUS_EXIT }] = await Promise.all([
      import("../status/collect.ts"),
      import("../status/render-text.ts"),
      import("../status/report.ts"),
    ]);
    const report = await collectStatus(config, proxy);
    process.stdout.write(inv.values.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatusText(report));
    return STATUS_EXIT[report.level];
  },
};
