/**
 * Local accounts by name: the one Postgres runs as, the one blue and green run as. Asked of `id`,
 * which reads whatever the system's directory is (/etc/passwd, LDAP, macOS' Directory Services).
 */
import { runProgram } from "./program.ts";

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** The account named, or undefined when there is none; `id` gets 30 s to answer. */
export async function lookupAccount(name: string): Promise<Account | undefined> {
  const id = (flag: string) => runProgram(["id", flag, name], { deadlineMs: 30_000 });
  const [uid, gid] = await Promise.all([id("-u"), id("-g")]);
  if (uid.code !== 0 || gid.code !== 0) return undefined;
  return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Whether this process is root (the one that may start others as another account). */
export const isRoot = (): boolean => process.getuid?.() === 0;
