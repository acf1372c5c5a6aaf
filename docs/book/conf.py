"""Sphinx configuration of the course site (``make book``; the source tree is staged by
`metakit.teaching.book`, which passes this folder with ``sphinx-build -c``)."""

project = "metakit"
html_title = "metakit: the course"           # the browser tab and the sidebar's heading
extensions = ["myst_nb"]                     # notebooks and markdown pages (myst-nb brings myst-parser)
html_theme = "furo"                          # ships its CSS, JS and icons; loads no web fonts
html_show_copyright = False                  # no copyright line in the footer (the licence is MIT, in pyproject)
html_copy_source = False                     # no _sources/ copies of every notebook beside the pages
exclude_patterns = ["_include/**"]           # the README is included by index.md, not a page of its own

nb_execution_mode = "off"                    # the tour ran already (make demo): Sphinx only renders it
nb_ipywidgets_js = {}                        # ipywidgets' embed scripts would come from a CDN: none offline
# a widget shows its text form, which book.copy_notebook replaces by a note (the controls need a kernel)
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]

# Every warning fails the build (book.py runs sphinx-build -W); the one kind named here is harmless:
# the results/ tables start at H2 (as their writer, the grid pipeline, makes them), a fine page.
suppress_warnings = ["myst.header"]
