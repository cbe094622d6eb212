/**
 * A color's port is only a number on loopback: while the color is stopped, any local account can
 * listen there. So a new connection to a color whose release proves itself (colorMustProve) first
 * carries GET /proof with a fresh challenge, and a caller's request goes out on it only after a 204
 * with that color's proof (src/lib/color-proof.ts). Whatever else holds the port never sees a
 * caller's request or token. The answer is framed by llhttp like any other (strict), and a byte
 * after it is refused.
 */

import { CHALLENGE_HEADER, colorMustProve, newChallenge, PROOF_HEADER, provesColor } from "../lib/color-proof.ts";
import type { Color } from "./admin-schema.ts";
import { HeadCollector } from "./head-collector.ts";
import { ERROR, HttpParser, RESPONSE } from "./llhttp.ts";

const LIMITS = { maxHeadBytes: 8_192, maxHeaderCount: 32, maxLineBytes: 8_192 };
const PROOF_LOWER = PROOF_HEADER.toLowerCase();

export class ColorProver {
  /** Whether the color's release proves itself: read again on each health probe (the release changes on deploy). */
  required = false;

  constructor(
    readonly color: Color,
    /** host:port, for the proof request's Host. */
    private readonly authority: string,
    private readonly key: Buffer,
    private readonly dataDir: string,
  ) {
    this.refresh();
  }

  refresh(): boolean {
    this.required = colorMustProve(this.dataDir, this.color);
    return this.required;
  }

  /** A new connection's proof exchange, or null when the color's release proves nothing. */
  begin(): ProofExchange | null {
    return this.required ? new ProofExchange(this, newChallenge()) : null;
  }

  request(challenge: string): string {
    return `GET /proof HTTP/1.1\r\nhost: ${this.authority}\r\nuser-agent: axe-proxy\r\n${CHALLENGE_HEADER}: ${challenge}\r\n\r\n`;
  }

  verify(challenge: string, proof: string | null): boolean {
    return provesColor(this.key, this.color, challenge, proof);
  }
}

/** The outcome of feeding a read to a proof exchange. */
export type ProofStep = { kind: "more" } | { kind: "proved" } | { kind: "refused"; reason: string };

/** One proof exchange on one new connection: the request, then its answer read through llhttp. */
export class ProofExchange extends HttpParser {
  private readonly head = new HeadCollector(LIMITS);
  private status = 0;
  private complete = false;

  constructor(
    private readonly prover: ColorProver,
    private readonly challenge: string,
  ) {
    super(RESPONSE);
  }

  get request(): string {
    return this.prover.request(this.challenge);
  }

  /** Feeds one read of the answer. A refusal or a proof frees the parser. */
  read(data: Buffer): ProofStep {
    const errno = this.execute(data);
    if (errno === ERROR.OK && !this.complete) return { kind: "more" };
    const whole = errno === ERROR.PAUSED && this.consumed() === data.byteLength;
    const step = this.judge(whole, errno);
    this.free();
    return step;
  }

  /** The connection closed before the answer was whole; frees the parser. */
  closed(): ProofStep {
    this.free();
    return this.refusal("it closed the connection before proving it");
  }

  private judge(whole: boolean, errno: number): ProofStep {
    if (errno !== ERROR.PAUSED) return this.refusal(`its answer to /proof is not valid HTTP (${this.reason()})`);
    if (!whole) return this.refusal("it sent bytes after its answer to /proof");
    if (this.status !== 204) return this.refusal(`it answered /proof with HTTP ${this.status}`);
    const at = this.head.lower.indexOf(PROOF_LOWER);
    const proof = at >= 0 && this.head.lower.lastIndexOf(PROOF_LOWER) === at ? this.head.values[at]! : null;
    if (!this.prover.verify(this.challenge, proof)) return this.refusal(`its ${PROOF_HEADER} is missing or wrong`);
    return { kind: "proved" };
  }

  private refusal(why: string): ProofStep {
    return {
      kind: "refused",
      reason: `what answers on ${this.prover.color}'s port is not this install's ${this.prover.color}: ${why}`,
    };
  }

  override onHeaderField(data: Buffer, at: number, length: number): number {
    return this.head.field(data, at, length) ? 0 : ERROR.USER;
  }

  override onHeaderValue(data: Buffer, at: number, length: number): number {
    return this.head.fieldValue(data, at, length) ? 0 : ERROR.USER;
  }

  override onHeadersComplete(status: number): number {
    this.status = status;
    return this.head.end() ? 0 : ERROR.USER;
  }

  override onBody(): number {
    return 0; // a 204 has none; any other answer is refused whole
  }

  override onMessageComplete(): number {
    this.complete = true;
    return ERROR.PAUSED;
  }
}
