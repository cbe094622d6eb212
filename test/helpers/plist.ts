/**
 * Property lists checked the way a Mac reads them: libplist's `plistutil` (Debian's libplist-utils)
 * parses each generated file and converts it to the binary form and back; the round trip must be
 * equal, and the keys must be ones launchd.plist(5) documents, with the types it documents.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./tmp.ts";

export type PlistValue = string | number | boolean | PlistValue[] | { [key: string]: PlistValue };

function plistutil(input: string, output: string, format: "bin" | "xml"): void {
  const run = Bun.spawnSync(["plistutil", "-i", input, "-o", output, "-f", format], { stdout: "pipe", stderr: "pipe" });
  if (run.exitCode !== 0)
    throw new Error(`plistutil could not read ${input}: ${run.stderr.toString() || run.stdout.toString()}`);
}

/** Parses `text` with plistutil (XML -> binary -> XML -> binary: both binaries equal) and returns its value. */
export function parsePlistStrictly(text: string): PlistValue {
  const dir = tempDir("axe-plist");
  const [xml, bin, xml2, bin2] = ["a.plist", "a.bin", "b.plist", "b.bin"].map((f) => join(dir, f)) as [
    string,
    string,
    string,
    string,
  ];
  writeFileSync(xml, text);
  plistutil(xml, bin, "bin");
  plistutil(bin, xml2, "xml");
  plistutil(xml2, bin2, "bin");
  if (!readFileSync(bin).equals(readFileSync(bin2)))
    throw new Error("the plist changed in a round trip through plistutil");
  const canonical = readValue(readFileSync(xml2, "utf8"));
  const ours = readValue(text);
  if (JSON.stringify(canonical) !== JSON.stringify(ours))
    throw new Error(`plistutil read ${JSON.stringify(canonical)}, the file says ${JSON.stringify(ours)}`);
  return canonical;
}

/** A reader of the XML plist forms (dict, array, string, integer, real, true, false). */
function readValue(xml: string): PlistValue {
  const tokens = [
    ...xml
      .replace(/<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--[\s\S]*?-->/g, "")
      .matchAll(/<(\/?)(\w+)(?:\s[^>]*?)?(\/?)>([^<]*)/g),
  ];
  let i = tokens.findIndex((t) => t[2] === "plist") + 1;
  const decodeEntities = (s: string) =>
    s
      .replaceAll("&lt;", "<")
      .replaceAll("&gt;", ">")
      .replaceAll("&quot;", '"')
      .replaceAll("&apos;", "'")
      .replaceAll("&amp;", "&");
  const value = (): PlistValue => {
    const [, closing, tag, selfClosing, text] = tokens[i++]!;
    if (closing) throw new Error(`unexpected </${tag}>`);
    if (tag === "true" || tag === "false") {
      if (!selfClosing) i++;
      return tag === "true";
    }
    if (tag === "string" || tag === "integer" || tag === "real") {
      if (selfClosing) return tag === "string" ? "" : 0;
      i++; // the closing tag
      return tag === "string" ? decodeEntities(text!) : Number(text);
    }
    if (tag === "array" || tag === "dict") {
      const items: PlistValue[] = [];
      const dict: Record<string, PlistValue> = {};
      if (selfClosing) return tag === "array" ? items : dict;
      while (!(tokens[i]![1] && tokens[i]![2] === tag)) {
        if (tag === "dict") {
          const key = tokens[i++]!;
          if (key[2] !== "key") throw new Error(`expected <key> in a dict, got <${key[2]}>`);
          i++;
          dict[decodeEntities(key[4]!)] = value();
        } else items.push(value());
      }
      i++;
      return tag === "array" ? items : dict;
    }
    throw new Error(`unknown plist element <${tag}>`);
  };
  return value();
}

type KeyType = "string" | "integer" | "boolean" | "strings" | "stringDict" | "calendar" | "keepAlive";

/** The keys launchd.plist(5) documents for what we generate, with their types. */
const LAUNCHD_KEYS: Record<string, KeyType> = {
  Label: "string",
  ProgramArguments: "strings",
  EnvironmentVariables: "stringDict",
  UserName: "string",
  GroupName: "string",
  RunAtLoad: "boolean",
  KeepAlive: "keepAlive",
  ThrottleInterval: "integer",
  ExitTimeOut: "integer",
  StandardOutPath: "string",
  StandardErrorPath: "string",
  WorkingDirectory: "string",
  StartCalendarInterval: "calendar",
  StartInterval: "integer",
  LowPriorityIO: "boolean",
  Nice: "integer",
  ProcessType: "string",
};
const CALENDAR_KEYS = new Set(["Minute", "Hour", "Day", "Weekday", "Month"]);

function typeProblem(type: KeyType, v: PlistValue): string | undefined {
  const isDict = typeof v === "object" && !Array.isArray(v);
  const calendar = (d: PlistValue) =>
    typeof d === "object" &&
    !Array.isArray(d) &&
    Object.entries(d).every(([k, n]) => CALENDAR_KEYS.has(k) && Number.isInteger(n));
  const ok =
    type === "string"
      ? typeof v === "string"
      : type === "integer"
        ? Number.isInteger(v)
        : type === "boolean"
          ? typeof v === "boolean"
          : type === "strings"
            ? Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === "string")
            : type === "stringDict"
              ? isDict && Object.values(v).every((s) => typeof s === "string")
              : type === "calendar"
                ? calendar(v) || (Array.isArray(v) && v.every(calendar))
                : typeof v === "boolean" || isDict;
  return ok ? undefined : `expected ${type}`;
}

/**
 * What is wrong with a launchd job for its use: a service is kept alive (KeepAlive, ThrottleInterval,
 * its logs), a timer runs at calendar times and is never kept alive. Empty when it is right.
 */
export function launchdProblems(plist: PlistValue, use: "service" | "timer"): string[] {
  if (typeof plist !== "object" || Array.isArray(plist)) return ["the top level is not a dict"];
  const problems: string[] = [];
  for (const [key, v] of Object.entries(plist)) {
    const type = LAUNCHD_KEYS[key];
    if (!type) problems.push(`${key}: not a launchd key we expect`);
    else {
      const problem = typeProblem(type, v);
      if (problem) problems.push(`${key}: ${problem}`);
    }
  }
  const need =
    use === "service"
      ? ["Label", "ProgramArguments", "KeepAlive", "ThrottleInterval", "StandardOutPath", "StandardErrorPath"]
      : ["Label", "ProgramArguments", "StandardErrorPath"];
  for (const key of need) if (!(key in plist)) problems.push(`${key}: missing for a ${use}`);
  if (use === "timer" && !("StartCalendarInterval" in plist) && !("StartInterval" in plist))
    problems.push("StartCalendarInterval or StartInterval: missing for a timer");
  if (use === "timer" && "KeepAlive" in plist) problems.push("KeepAlive: a timer must not be kept alive");
  return problems;
}
