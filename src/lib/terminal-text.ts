/**
 * Text that came from another machine or program (a status report, a receiver's deploy report,
 * ssh's or restic's last words), made safe to print on the operator's terminal: CSI sequences
 * (colours, erase, cursor moves) are dropped, and every other control character (ESC of a title or
 * clipboard sequence, BEL, CR, ...) and bidi override becomes U+FFFD, so a machine someone took
 * over cannot erase, move, recolour or retitle what the operator reads, write the clipboard, nor
 * hide another machine's line. JSON output keeps the text as it came.
 *
 * @example
 * process.stdout.write(`${printable(report.summary)}\n`);
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CSI = /\u001b\[[0-?]*[ -/]*[@-~]/g;
const STEERING = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;

export function printable(text: string): string {
  return text.replace(CSI, "").replace(STEERING, "\ufffd");
}

/** `printable` line by line: a report of several lines keeps its line breaks and nothing else. */
export function printableLines(text: string): string {
  return text.split(/\r?\n/).map(printable).join("\n");
}
