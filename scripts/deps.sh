#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks talk to: real SIP
# peers (SIPp, baresip), Kamailio (benchmark anchor) and protoc (generated-code
# check), Chromium (browser tests), libopus (the Opus codec, cgo). As root it installs what is missing; otherwise it prints the command.
set -euo pipefail

packages=(gcc pkg-config libopus-dev libopusfile-dev sip-tester baresip kamailio protobuf-compiler espeak-ng chromium)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present (${packages[*]})"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${missing[*]}"
