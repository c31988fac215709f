"""`toylab lab`: the live lab in the browser.

`targets` turns the page's target choices (registry targets, drawings, uploads) into
densities; `session` owns one tab's Run, its stepping, frames and saving; `server` is the
Starlette app (page, static files, one WebSocket per tab, the access rule). The page itself
is plain HTML, CSS and JavaScript under `static/`.
"""
