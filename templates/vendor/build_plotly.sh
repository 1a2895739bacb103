#!/bin/sh
# Build the partial plotly.js the pages ship (templates/vendor/README.md): plotly.js's own
# core (scatter and the components) plus the bar and heatmap traces, nothing else, minified
# by esbuild the way plotly.js builds its dist bundles. Run by hand when updating plotly.js;
# nothing is fetched at build or run time. Usage: sh templates/vendor/build_plotly.sh [VERSION]
set -eu
VERSION="${1:-4.1.1}"
ESBUILD=0.28.2
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
cd "$WORK"
npm install --ignore-scripts --no-audit --no-fund "plotly.js@$VERSION" "esbuild@$ESBUILD" >/dev/null
cat > entry.js <<'JS'
var Plotly = require('plotly.js/lib/core');
Plotly.register([require('plotly.js/lib/bar'), require('plotly.js/lib/heatmap')]);
module.exports = Plotly;
JS
{
  printf '/**\n* plotly.js (epochscope partial: scatter, bar, heatmap - minified) v%s\n' "$VERSION"
  printf '* Copyright 2012-2026, Plotly, Inc.\n* All rights reserved.\n* Licensed under the MIT license\n*/\n'
} > banner.txt
npx esbuild entry.js --bundle --minify --format=iife --global-name=Plotly --target=es2016 \
  --define:global=window --define:define.amd=false --alias:stream=stream-browserify \
  --legal-comments=eof --log-level=warning --outfile=out.js
cat banner.txt out.js > "$HERE/plotly-partial-$VERSION.min.js"
cp node_modules/plotly.js/LICENSE "$HERE/plotly-LICENSE.txt"
sha256sum "$HERE/plotly-partial-$VERSION.min.js"
rm -rf "$WORK"
