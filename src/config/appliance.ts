/**
 * appliance.yaml: this machine. Which customer it is, ports, database, paths, backup tiers,
 * drain and health timeouts. Relative paths are resolved against the config directory.
 */
import { z } from "zod";
import {
  BackupSection,
  DatabaseSection,
  DeploySection,
  FrameSection,
  ProxySection,
  StatusSection,
} from "./sections.ts";
import { YamlSource } from "./yaml-source.ts";

export const ApplianceFileSchema = z.strictObject({
  customer: z.string().min(1, "expected the name of this machine's customer in customers.yaml"),
  /** Where the embedded cluster, state, releases and logs live; default ./data beside the config. */
  data_dir: z.string().default("data"),
  /** 0600 secret files (keys, passwords); default ./secrets beside the config. */
  secrets_dir: z.string().default("secrets"),
  database: DatabaseSection.prefault({}),
  frame: FrameSection.prefault({}),
  proxy: ProxySection.prefault({}),
  deploy: DeploySection.prefault({}),
  backup: BackupSection.prefault({}),
  status: StatusSection.prefault({}),
});

export type ApplianceFile = z.output<typeof ApplianceFileSchema>;

export function readApplianceFile(file: string): { source: YamlSource; appliance: ApplianceFile } {
  const source = YamlSource.read(file);
  return { source, appliance: source.validate(ApplianceFileSchema) };
}
