/**
 * A small command tree over node:util parseArgs: every command and group has --help, unknown
 * commands and flags are usage errors (exit 2) with a hint, and commands stay thin: they parse,
 * then call into their mode's module.
 */
import { parseArgs } from "node:util";
import { UsageError } from "./errors.ts";

export interface Option {
  type: "string" | "boolean";
  description: string;
  /** Shown in help as `--name VALUE`. */
  value?: string;
  short?: string;
  multiple?: boolean;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Invocation {
  values: Values;
  positionals: string[];
  /** Full command path, e.g. "axe-appliance token issue", for messages. */
  path: string;
}

export interface Command {
  name: string;
  summary: string;
  /** Argument synopsis after the command path, e.g. "--color blue|green [--port N]". */
  usage?: string;
  /** Paragraphs printed after the usage line. */
  details?: string;
  options?: Record<string, Option>;
  /** Positional arguments allowed: a count, or "any". Default 0. */
  positionals?: number | "any";
  subcommands?: Command[];
  run?: (invocation: Invocation) => Promise<number | void> | number | void;
}

export const HELP: Option = { type: "boolean", short: "h", description: "show this help" };

/** Runs the command `argv` names under `root`; returns the exit code. */
export async function dispatch(
  root: Command,
  argv: string[],
  out: (s: string) => void = (s) => void process.stdout.write(s),
): Promise<number> {
  let command = root;
  let path = root.name;
  let rest = argv;
  while (command.subcommands && rest.length > 0 && !rest[0]!.startsWith("-")) {
    const next = command.subcommands.find((c) => c.name === rest[0]);
    if (!next) {
      const guess = closest(
        rest[0]!,
        command.subcommands.map((c) => c.name),
      );
      throw new UsageError(
        "UNKNOWN_COMMAND",
        `unknown command '${[path, rest[0]].join(" ")}'`,
        guess ? `did you mean '${path} ${guess}'? See '${path} --help'` : `see '${path} --help'`,
      );
    }
    command = next;
    path = `${path} ${next.name}`;
    rest = rest.slice(1);
  }
  if (rest.includes("--help") || rest.includes("-h") || (!command.run && rest.length === 0)) {
    out(renderHelp(command, path));
    return command.run || rest.includes("--help") || rest.includes("-h") ? 0 : 2;
  }
  if (!command.run) {
    throw new UsageError("UNKNOWN_FLAG", `'${path}' needs a subcommand, not '${rest[0]}'`, `see '${path} --help'`);
  }
  const { values, positionals } = parseFlags(command, path, rest);
  const code = await command.run({ values, positionals, path });
  return typeof code === "number" ? code : 0;
}

function parseFlags(command: Command, path: string, args: string[]) {
  const options = Object.fromEntries(
    Object.entries({ ...command.options, help: HELP }).map(([name, o]) => [
      name,
      { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
    ]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    const message = (error as Error).message.split("\n")[0]!.replace(/\. To specify a positional.*$/, "");
    const flag = /'(-[^']+)'/.exec(message)?.[1];
    const guess = flag
      ? closest(flag.replace(/^-+/, "").split("=")[0]!, Object.keys(command.options ?? {}))
      : undefined;
    throw new UsageError(
      "BAD_FLAG",
      `${path}: ${message.replace(/^Unknown option/, "unknown option")}`,
      guess ? `did you mean '--${guess}'? See '${path} --help'` : `see '${path} --help'`,
    );
  }
  const allowed = command.positionals ?? 0;
  if (allowed !== "any" && parsed.positionals.length > allowed) {
    throw new UsageError(
      "BAD_ARGUMENT",
      `${path}: unexpected argument '${parsed.positionals[allowed]}'`,
      `see '${path} --help'`,
    );
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

export function renderHelp(command: Command, path: string): string {
  const lines = [`${path}: ${command.summary}`, ""];
  const synopsis = command.subcommands ? "COMMAND [options]" : (command.usage ?? "[options]");
  lines.push(`Usage: ${path} ${synopsis}`.trimEnd());
  if (command.details) lines.push("", ...command.details.trim().split("\n"));
  if (command.subcommands?.length) {
    lines.push("", "Commands:");
    const width = Math.max(...command.subcommands.map((c) => c.name.length));
    for (const sub of command.subcommands) lines.push(`  ${sub.name.padEnd(width)}  ${sub.summary}`);
    lines.push("", `Run '${path} COMMAND --help' for a command's options.`);
  }
  const options = Object.entries({ ...command.options, help: HELP });
  lines.push("", "Options:");
  const label = ([name, o]: [string, Option]) =>
    `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
  const width = Math.max(...options.map((o) => label(o).length));
  for (const option of options) lines.push(`  ${label(option).padEnd(width)}  ${option[1].description}`);
  return `${lines.join("\n")}\n`;
}

/** The candidate within edit distance 2 of `word`, for "did you mean". */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(word, name);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Reads a string flag, failing with a usage error when a required one is missing. */
export function stringFlag(inv: Invocation, name: string, required: true): string;
export function stringFlag(inv: Invocation, name: string, required?: false): string | undefined;
export function stringFlag(inv: Invocation, name: string, required = false): string | undefined {
  const value = inv.values[name];
  if (typeof value === "string") return value;
  if (required) throw new UsageError("MISSING_FLAG", `${inv.path}: --${name} is required`, `see '${inv.path} --help'`);
  return undefined;
}

/** Reads the positional argument at `index`, failing with a usage error that names it when absent. */
export function positional(inv: Invocation, index: number, name: string, hint?: string): string {
  const value = inv.positionals[index];
  if (value === undefined)
    throw new UsageError("MISSING_ARGUMENT", `${inv.path}: ${name} is required`, hint ?? `see '${inv.path} --help'`);
  return value;
}

/** Reads a flag that must be one of `choices`. */
export function choiceFlag<T extends string>(
  inv: Invocation,
  name: string,
  choices: readonly T[],
  required = false,
): T | undefined {
  const value = required ? stringFlag(inv, name, true) : stringFlag(inv, name);
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value))
    throw new UsageError(
      "BAD_FLAG",
      `${inv.path}: --${name} must be one of ${choices.join(", ")}, not '${value}'`,
      `see '${inv.path} --help'`,
    );
  return value as T;
}

/** Reads a positive integer flag such as --port. */
export function intFlag(inv: Invocation, name: string, min = 1, max = 65535): number | undefined {
  const value = stringFlag(inv, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(
      "BAD_FLAG",
      `${inv.path}: --${name} must be a whole number from ${min} to ${max}, not '${value}'`,
    );
  return n;
}

export const CONFIG_OPTION: Option = {
  type: "string",
  value: "DIR",
  description:
    "config directory with appliance.yaml and customers.yaml (default: $AXE_CONFIG_DIR, /opt/axe/config, or .)",
};
export const JSON_OPTION: Option = { type: "boolean", description: "print JSON instead of a table" };
