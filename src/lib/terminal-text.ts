/**
 * Text that came from another machine (a status report, a receiver's deploy report, ssh's last
 * words), made safe to print on the operator's terminal: control characters (ESC, BEL, CR, ...)
 * and bidi overrides become U+FFFD, so a machine someone took over cannot erase, move, recolour or
 * retitle what the operator reads, nor hide another machine's line. JSON output keeps the text.
 *
 * @example
 * process.stdout.write(`${printable(report.summary)}\n`);
 */
const STEERING = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu;

export function printable(text: string): string {
  return text.replace(STEERING, "\ufffd");
}
