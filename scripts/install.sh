#!/usr/bin/env bash
# Installs the plugin where GStreamer finds it without GST_PLUGIN_PATH, as `cargo cinstall` does for
# gst-plugins-rs crates (a release build, then the library copied into a plugin directory), or
# removes it again.
#
#   scripts/install.sh                  build, install for this user:
#                                       ${XDG_DATA_HOME:-~/.local/share}/gstreamer-1.0/plugins
#   scripts/install.sh --prefix /usr    build, install system-wide: PREFIX/lib/<multiarch>/gstreamer-1.0
#                                       (Debian's GStreamer scans /usr/lib/x86_64-linux-gnu/gstreamer-1.0;
#                                       other prefixes, /usr/local included, need GST_PLUGIN_SYSTEM_PATH)
#   scripts/install.sh --uninstall [--prefix P]   remove what the same command installed
#
# Options: --profile NAME (cargo profile, default release), --library FILE (install this already
# built plugin instead of building; tests/install.rs uses it).
set -euo pipefail
cd "$(dirname "$0")/.."

library_name=libgstrealtimetranslate.so
prefix=""
profile=release
library=""
uninstall=false

# The header above, as help: on stdout with status 0 when asked for, else on stderr with 2.
usage() {
  if [ "${1:-2}" = 0 ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  else
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  fi
  exit "${1:-2}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --profile) profile=${2:?--profile needs a name}; shift 2 ;;
    --profile=*) profile=${1#*=}; shift ;;
    --library) library=${2:?--library needs a file}; shift 2 ;;
    --library=*) library=${1#*=}; shift ;;
    --uninstall) uninstall=true; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install: unknown option $1" >&2; usage ;;
  esac
done

# The plugin directory: GStreamer's per-user one, or the system layout under a prefix.
if [ -n "$prefix" ]; then
  multiarch=$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)
  plugin_dir="$prefix/lib${multiarch:+/$multiarch}/gstreamer-1.0"
else
  plugin_dir="${XDG_DATA_HOME:-${HOME:?HOME is not set}/.local/share}/gstreamer-1.0/plugins"
fi
target="$plugin_dir/$library_name"

if $uninstall; then
  if [ -e "$target" ]; then
    rm -f "$target"
    echo "install: removed $target"
  else
    echo "install: nothing installed at $target"
  fi
  exit 0
fi

if [ -z "$library" ]; then
  scripts/setup.sh
  cargo build --profile "$profile" --lib -p gst-plugin-realtimetranslate
  case "$profile" in
    dev|test) profile_dir=debug ;;
    bench) profile_dir=release ;;
    *) profile_dir=$profile ;;
  esac
  library="${CARGO_TARGET_DIR:-target}/$profile_dir/$library_name"
fi
[ -f "$library" ] || { echo "install: no plugin at $library" >&2; exit 1; }

install -d "$plugin_dir"
# Copy then rename, so a running GStreamer never maps a half-written file.
install -m 0644 "$library" "$target.tmp"
mv -f "$target.tmp" "$target"
echo "install: installed $target"
if [ -z "$prefix" ] || [ "$plugin_dir" = "$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null)" ]; then
  echo "install: check with: gst-inspect-1.0 realtimetranslate"
else
  echo "install: GStreamer does not scan $plugin_dir by default: set GST_PLUGIN_SYSTEM_PATH or GST_PLUGIN_PATH to it"
fi
