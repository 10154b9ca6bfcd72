"""The console's only asset, its stylesheet, kept here so that nothing is fetched from elsewhere.

Colours are chosen for at least 4.5:1 contrast (text on white #1a1a1a 17:1, links #0b57d0 6.3:1,
badge text on its tint above 7:1); every focusable element shows a 3 px outline.
"""

from __future__ import annotations

CSS = """\
*, *::before, *::after { box-sizing: border-box; }
html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
       font-size: 100%; line-height: 1.5; color: #1a1a1a; background: #ffffff; }
body { margin: 0; }
a { color: #0b57d0; text-decoration: underline; }
a:visited { color: #5b2a86; }
:focus-visible { outline: 3px solid #0b57d0; outline-offset: 2px; }
header :focus-visible, nav :focus-visible { outline-color: #ffd23f; }
.skip { position: absolute; left: -10000px; top: 0; background: #ffd23f; color: #1a1a1a;
        padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: 1rem; top: 1rem; }
header { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center;
         gap: .5rem 1rem; background: #1f2937; color: #ffffff; padding: .5rem 1.5rem; }
header .brand { font-weight: 700; font-size: 1.15rem; margin: 0; color: #ffffff;
                text-decoration: none; }
header .who { display: flex; align-items: center; gap: .75rem; margin: 0; }
header .who form { margin: 0; }
nav.main { background: #374151; padding: 0 1.5rem; }
nav.main ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; }
nav.main a { display: block; padding: .6rem .9rem; color: #ffffff; text-decoration: none; }
nav.main a:hover { text-decoration: underline; }
nav.main a[aria-current="page"] { background: #ffffff; color: #1a1a1a; font-weight: 700; }
main { padding: 1rem 1.5rem 2rem; max-width: 90rem; }
main:focus { outline: none; }
footer { border-top: 1px solid #6b7280; color: #374151; padding: .75rem 1.5rem; font-size: .9rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.25rem; margin: 1.5rem 0 .5rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
nav.sub ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; min-width: 20rem; }
caption { text-align: left; font-weight: 700; padding: .25rem 0; }
th, td { border: 1px solid #6b7280; padding: .3rem .6rem; text-align: left;
         vertical-align: top; }
th { background: #f3f4f6; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em; }
pre { background: #f3f4f6; padding: .75rem; overflow-x: auto; white-space: pre-wrap; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: .75rem; font-size: .875rem;
         font-weight: 600; border: 1px solid currentColor; }
.badge.ok { background: #d1e7dd; color: #0f5132; }
.badge.bad { background: #f8d7da; color: #842029; }
.badge.warn { background: #fff3cd; color: #664d03; }
.badge.info { background: #cfe2ff; color: #084298; }
.flash { border: 2px solid; border-radius: .25rem; padding: .6rem 1rem; margin: 0 0 1rem; }
.flash.ok { background: #d1e7dd; color: #0f5132; }
.flash.error { background: #f8d7da; color: #842029; }
.empty { color: #374151; font-style: italic; }
form.action { display: flex; flex-wrap: wrap; align-items: flex-end; gap: .5rem 1rem;
              margin: .5rem 0 1rem; padding: .75rem; border: 1px solid #6b7280;
              border-radius: .25rem; }
label { display: flex; flex-direction: column; font-weight: 600; gap: .2rem; }
input, select, textarea { font: inherit; color: #1a1a1a; background: #ffffff;
                          border: 1px solid #4b5563; border-radius: .2rem; padding: .3rem .5rem; }
input[type="password"], input[type="text"].wide { min-width: 22rem; max-width: 100%; }
button { font: inherit; font-weight: 600; cursor: pointer; border-radius: .25rem;
         padding: .35rem .9rem; border: 2px solid #0b57d0; background: #0b57d0; color: #ffffff; }
button:hover { background: #0842a0; border-color: #0842a0; }
button.secondary { background: #ffffff; color: #0b57d0; }
button.danger { background: #a4161a; border-color: #a4161a; color: #ffffff; }
header button { background: #ffffff; color: #1f2937; border-color: #ffffff; }
.login { max-width: 32rem; margin: 3rem auto; padding: 1.5rem; border: 1px solid #6b7280;
         border-radius: .4rem; }
.login form { display: flex; flex-direction: column; gap: 1rem; }
.hint { color: #374151; font-size: .9rem; margin: 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
progress, meter { width: 14rem; height: 1rem; vertical-align: middle; }
details { margin: .5rem 0 1rem; }
summary { cursor: pointer; font-weight: 600; }
svg.chart { max-width: 100%; height: auto; background: #ffffff; }
.picker, .filters, .recheck { display: flex; flex-wrap: wrap; align-items: flex-end;
                            gap: .5rem 1rem; margin: .5rem 0 1rem; }
.note, .legend { color: #374151; }
"""
