#!/usr/bin/env bash
# Installs the Debian packages Graft builds against, when any is missing (idempotent, quiet
# when everything is there). Swift itself is expected on PATH.
set -euo pipefail
packages=(pkg-config protobuf-c-compiler libprotobuf-c-dev libhdf5-dev libopenblas-dev libturbojpeg0-dev libpng-dev python3-venv dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH (Graft needs Swift 6)" >&2; exit 1; }
