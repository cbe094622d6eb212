#!/usr/bin/env bash
# install.sh: puts axe-appliance on a fresh Mac mini (or a Linux box).
# Not finished in this release: it checks the platform and says what to do by hand.
set -euo pipefail

case "$(uname -s)-$(uname -m)" in
  Darwin-arm64 | Darwin-x86_64 | Linux-x86_64 | Linux-aarch64) ;;
  *) echo "install.sh: unsupported platform $(uname -s) $(uname -m)" >&2; exit 2 ;;
esac

echo "install.sh: not built yet in this release." >&2
echo "By hand: copy dist/axe-appliance to /opt/axe/bin, appliance.yaml and customers.yaml to /opt/axe/config," >&2
echo "then run: /opt/axe/bin/axe-appliance doctor --config /opt/axe/config" >&2
exit 69
