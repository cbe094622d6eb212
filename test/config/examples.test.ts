import { expect, test } from "bun:test";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { REPO } from "../helpers/cli.ts";
import { tempDir } from "../helpers/tmp.ts";

test("the shipped appliance.example.yaml and customers.yaml load together as a real machine's config", () => {
  const dir = tempDir("axe-example");
  copyFileSync(join(REPO, "customers.yaml"), join(dir, "customers.yaml"));
  copyFileSync(join(REPO, "appliance.example.yaml"), join(dir, "appliance.yaml"));
  const config = loadConfig({ dir });
  expect(config.customer.name).toBe("axe");
  expect(config.mcpUrl).toBe("https://axe.axelabs.ai/frame/mcp");
  expect(config.paths.data).toBe(join(dir, "data"));
  expect(config.appliance.proxy.listen).toBe("127.0.0.1:3712");
  expect(config.appliance.frame.ports).toEqual({ blue: 3710, green: 3711 });
});
