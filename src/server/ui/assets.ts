// The browser's two static files, kept as strings so the bundled CLI carries them: one style
// sheet and one small script for the copy buttons. Both are served from /assets/ under names
// that hold a hash of their content, so they can be cached for a year.
import { createHash } from 'node:crypto';

export const STYLE = String.raw`
:root {
  --bg: #ffffff;
  --fg: #1d1d1f;
  --muted: #5f6368;
  --line: #d9dce1;
  --soft: #f4f5f7;
  --accent: #1f5fbf;
  --accent-fg: #ffffff;
  --warn-bg: #fff6e0;
  --warn-line: #e5c158;
  --focus: #e8710a;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #16181c;
    --fg: #e6e6e6;
    --muted: #a3a9b3;
    --line: #353a42;
    --soft: #1f2329;
    --accent: #7fb0ff;
    --accent-fg: #0d1117;
    --warn-bg: #2f2816;
    --warn-line: #8a6d1f;
    --focus: #ffab5e;
  }
}
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0;
  background: var(--bg);
  color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: var(--accent); }
a:hover { text-decoration-thickness: 2px; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.92em; }
.visually-hidden {
  position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
.offscreen { position: fixed; left: -9999px; top: 0; opacity: 0; }
.skip { position: absolute; left: 0.5rem; top: -3rem; padding: 0.4rem 0.8rem; background: var(--accent); color: var(--accent-fg); z-index: 10; }
.skip:focus { top: 0.5rem; }

header.site {
  display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1.25rem;
  padding: 0.6rem 1rem; border-bottom: 1px solid var(--line); background: var(--soft);
}
.brand { font-weight: 700; font-size: 1.1rem; color: var(--fg); text-decoration: none; }
header.site nav { display: flex; gap: 1rem; flex-wrap: wrap; }
form.search { display: flex; gap: 0.4rem; flex: 1 1 18rem; max-width: 40rem; margin-left: auto; }
form.search input { flex: 1; min-width: 0; }
form.account { display: flex; gap: 0.4rem; align-items: center; font-size: 0.9rem; }
input[type="search"], input[type="text"] {
  font: inherit; padding: 0.35rem 0.55rem; border: 1px solid var(--line); border-radius: 6px;
  background: var(--bg); color: var(--fg);
}
button, .button {
  font: inherit; padding: 0.35rem 0.8rem; border: 1px solid var(--accent); border-radius: 6px;
  background: var(--accent); color: var(--accent-fg); cursor: pointer; text-decoration: none; display: inline-block;
}
button.copy {
  padding: 0.05rem 0.45rem; font-size: 0.8rem; background: transparent; color: var(--accent);
  border-color: var(--line); vertical-align: baseline; white-space: nowrap;
}
button.copy.copied { border-color: var(--accent); }

main { padding: 1rem; max-width: 90rem; margin: 0 auto; }
main:focus { outline: none; }
h1 { font-size: 1.45rem; margin: 0.3rem 0 0.8rem; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 0.6rem; overflow-wrap: anywhere; }
h3 { font-size: 1rem; margin: 1.2rem 0 0.4rem; overflow-wrap: anywhere; }
p { margin: 0.5rem 0; }
.muted { color: var(--muted); }
.verified { color: #1a7f37; }
.crumbs { margin: 0 0 0.3rem; color: var(--muted); overflow-wrap: anywhere; }
.crumbs a { color: var(--muted); }
.notice { border: 1px solid var(--warn-line); background: var(--warn-bg); padding: 0.6rem 0.8rem; border-radius: 6px; }
.filter { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; margin: 0 0 0.8rem; }

.table-wrap { overflow-x: auto; position: relative; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.4rem 0.55rem; border-bottom: 1px solid var(--line); }
td { overflow-wrap: anywhere; }
th { font-weight: 600; white-space: nowrap; background: var(--soft); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td .kind { color: var(--muted); font-size: 0.85em; }
td.none { color: var(--muted); }
.tag-name { font-weight: 600; overflow-wrap: anywhere; }
.nowrap { white-space: nowrap; overflow-wrap: normal; }
h3 .aside { font-weight: normal; font-size: 0.85rem; margin-left: 0.4rem; }
details.same { margin: 0.4rem 0 0.2rem; }
details.same > summary { color: var(--muted); }
meter { width: 6rem; vertical-align: middle; }

dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.3rem 1rem; margin: 0.5rem 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
table.annotations td:first-child { width: 32%; }
table.annotations .label { display: block; }
table.annotations .key { display: block; color: var(--muted); font-size: 0.85em; overflow-wrap: anywhere; }
table.annotations td { padding-top: 0.3rem; padding-bottom: 0.3rem; }
.value { white-space: pre-wrap; overflow-wrap: anywhere; }
pre.raw { background: var(--soft); border: 1px solid var(--line); padding: 0.7rem; overflow: auto; max-height: 32rem; border-radius: 6px; }
details > summary { cursor: pointer; }
.pager { display: flex; gap: 1rem; margin: 1rem 0; flex-wrap: wrap; }
ul.plain { list-style: none; padding: 0; margin: 0.3rem 0; }
ul.plain li { padding: 0.2rem 0; overflow-wrap: anywhere; }
/* Insights: server-drawn SVG charts with an HTML legend and their figures in a table. */
.chart-block { margin: 1.5rem 0; }
.chart-block figure { margin: 0; }
svg.chart { display: block; max-width: 44rem; height: auto; color: var(--fg); }
ul.legend { list-style: none; padding: 0; margin: 0.4rem 0; display: flex; flex-wrap: wrap; gap: 0.3rem 1rem; }
ul.legend li { white-space: nowrap; }
svg.swatch { vertical-align: -1px; }
details.figures { margin: 0.3rem 0; }
table.figures td.num, table.figures th.num { text-align: right; white-space: nowrap; }
.downloads a { margin-right: 1rem; }
footer { padding: 1.5rem 1rem; color: var(--muted); font-size: 0.85rem; text-align: center; }

/* Narrow screens: each table row becomes a card, each cell a labelled line. */
@media (max-width: 760px) {
  main { padding: 0.75rem; }
  form.search { margin-left: 0; max-width: none; }
  table.cards thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.cards, table.cards tbody, table.cards tr, table.cards td { display: block; width: 100%; }
  table.cards tr { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 0.8rem; padding: 0.3rem 0.6rem; }
  table.cards td { border: 0; padding: 0.2rem 0 0.2rem 7.5rem; position: relative; min-height: 1.9rem; }
  table.cards td::before { content: attr(data-label); color: var(--muted); position: absolute; left: 0; top: 0.2rem; width: 7rem; }
  table.cards td.num { text-align: left; }
  table.cards td.lead { padding-left: 0; font-size: 1.05rem; }
  table.cards td.lead::before { content: none; }
  table.cards.annotations tr { border: 0; border-bottom: 1px solid var(--line); border-radius: 0; margin: 0; padding: 0.35rem 0; }
  table.cards.annotations td { padding-left: 0; min-height: 0; }
  table.cards.annotations td::before { content: none; }
  table.cards.annotations td:first-child { width: auto; font-weight: 600; }
  table.cards.annotations td:first-child .key { font-weight: normal; }
  dl.facts { grid-template-columns: 1fr; gap: 0 0; }
  dl.facts dd { margin-bottom: 0.4rem; }
}
`;

// Plain ES5-style script: no modules, no inline handlers. Copy buttons are hidden until this runs.
export const COPY_SCRIPT = String.raw`(function () {
  'use strict';
  var status = document.getElementById('copy-status');

  function announce(text) {
    if (!status) return;
    status.textContent = '';
    window.setTimeout(function () { status.textContent = text; }, 30);
  }

  function copyWithSelection(text) {
    var area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'offscreen';
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(
        function () { return true; },
        function () { return copyWithSelection(text); }
      );
    }
    return Promise.resolve(copyWithSelection(text));
  }

  document.addEventListener('click', function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var button = target.closest('button[data-copy]');
    if (!button) return;
    var text = button.getAttribute('data-copy') || '';
    var what = button.getAttribute('data-copy-what') || 'text';
    var label = button.querySelector('.copy-label');
    copy(text).then(function (ok) {
      button.classList.toggle('copied', ok);
      if (label) label.textContent = ok ? 'Copied' : 'Copy failed';
      announce(ok ? 'Copied the ' + what + '.' : 'Could not copy the ' + what + '.');
      window.setTimeout(function () {
        button.classList.remove('copied');
        if (label) label.textContent = 'Copy';
      }, 2000);
    });
  });

  var buttons = document.querySelectorAll('button[data-copy]');
  for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
})();
`;

interface Asset {
  path: string;
  body: string;
  contentType: string;
  etag: string;
}

function asset(name: string, ext: string, body: string, contentType: string): Asset {
  const hash = createHash('sha256').update(body).digest('hex');
  return { path: `/assets/${name}.${hash.slice(0, 12)}.${ext}`, body, contentType, etag: `"${hash.slice(0, 32)}"` };
}

export const ASSETS = {
  style: asset('tagtrail', 'css', STYLE, 'text/css; charset=utf-8'),
  copy: asset('copy', 'js', COPY_SCRIPT, 'text/javascript; charset=utf-8'),
} as const;

export function findAsset(path: string): Asset | undefined {
  return Object.values(ASSETS).find((a) => a.path === path);
}
