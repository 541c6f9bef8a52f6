#!/usr/bin/env bash
# The HTML reports in a real browser: writes the reports of `run --html` (a classifier scenario
# with accuracy and unpriced actions, and a language-model scenario whose run labels hold HTML
# markup), `sweep --html` and `compare --html`, and loads each in headless Chromium with
# check.mjs (no console errors, no requests, the tables' rows, the sort script, a non-blank
# screenshot). Then checks that check.mjs refuses bad.html, a page that requests the network,
# logs an error and throws. Needs Node.js and Chromium (CHROMIUM, default /usr/bin/chromium);
# uses the debug binary (`cargo build` first) unless PICOJOULE names another.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
pj=${PICOJOULE:-$root/target/debug/picojoule}
here=$root/tests/browser
[ -x "$pj" ] || { echo "browser check: $pj not found: cargo build first" >&2; exit 1; }
command -v node >/dev/null || { echo "browser check: node not found" >&2; exit 1; }
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "browser check: chromium not found" >&2; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/picojoule-browser.XXXXXX")
trap 'rm -rf "$out"' EXIT

"$pj" run scenarios/digits-attention.ron --out "$out/run" --html >/dev/null
# Labels with markup and quotes: the page shows them as text.
cat >"$out/markup.ron" <<EOF
Scenario(
    name: "markup <i>test</i>",
    seed: 1,
    hardware: "horowitz45",
    input: Text("$root/data/text/sotu-test.txt"),
    tokens: 16,
    runs: [
        (model: "$root/models/spikegpt-tiny.ron", variant: Some(SpikeDriven), label: Some("<b>spiking</b> & \"q\""), group: Some("<i>snn</i>")),
        (model: "$root/models/spikegpt-tiny.ron", variant: Some(NonSpiking), label: Some("<script>ann</script>"), group: Some("<i>ann</i>")),
    ],
)
EOF
"$pj" run "$out/markup.ron" --out "$out/markup" --html >/dev/null
"$pj" sweep scenarios/sweep-ac-energy.ron --out "$out/sweep" --html >/dev/null
"$pj" compare scenarios/paper-vs-full.ron --out "$out/compare" --html >/dev/null

node "$here/check.mjs" run "$out/run"
node "$here/check.mjs" run "$out/markup"
node "$here/check.mjs" sweep "$out/sweep"
node "$here/check.mjs" compare "$out/compare"

# The checker itself: it must fail on a bad page, naming each problem.
if node "$here/check.mjs" page "$here/bad.html" 2>"$out/bad.err" >/dev/null; then
    echo "browser check: check.mjs accepted bad.html" >&2
    exit 1
fi
for want in "requests besides the page" "console.error: boom" "uncaught exception"; do
    grep -q "$want" "$out/bad.err" || {
        echo "browser check: check.mjs did not report '$want' on bad.html:" >&2
        cat "$out/bad.err" >&2
        exit 1
    }
done
echo "browser check: 4 reports pass, bad.html refused"
