/**
 * frame.run_as: the account blue and green run as when root starts them (decision 79). Root
 * hands that account the files a color reads (`keys init`), and the service units and `up` start
 * the colors as it. Unset, or when we are not root, there is no other account to start or write for.
 */
import { type Account, isRoot, lookupAccount } from "../lib/account.ts";
import { ConfigError } from "../lib/errors.ts";
import type { Config } from "./load.ts";

/** The account colors run as, when it is set and we are root; a name with no account is an error. */
export async function frameAccount(config: Config): Promise<Account | undefined> {
  const name = config.appliance.frame.run_as;
  if (!name || !isRoot()) return undefined;
  const account = await lookupAccount(name);
  if (!account)
    throw new ConfigError(
      "RUN_AS_MISSING",
      `frame.run_as is ${name}, and there is no account ${name} on this machine`,
      "create it (install.sh does for a new machine) or change frame.run_as in appliance.yaml",
    );
  return account;
}
