"""Stage `plots_page`: the page that `dvc plots show` fills, with Vega, Vega-Lite and Vega-Embed inside it.

DVC's own page loads them from a CDN, and without the network it draws none of its plots. `.dvc/config`'s
`plots.html_template` names the file written here; the libraries come from the pinned vl-convert-python package.
"""

import vl_convert

from . import stage_process
from .atomic import atomic_path

# DVC's built-in templates are written for Vega-Lite 5 (its own page loads 5.2): the latest 5 that vl-convert ships.
VEGA_LITE = "5.21"

# DVC writes each plot as an inline `vegaEmbed(...)` call, run as the page is read, before a module script runs:
# a stand-in holds the calls, and the bundle, once loaded, makes them.
EMBED_HELD_CALLS = """
const held = window.vegaEmbedCalls;
window.vegaEmbed = vegaEmbed;
for (const call of held) vegaEmbed(...call);
"""

# No `{scripts}`: DVC would fill it with the CDN's script tags.
PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC Plot</title>
    <script>
        window.vegaEmbedCalls = [];
        window.vegaEmbed = (...call) => window.vegaEmbedCalls.push(call);
    </script>
    <script type="module">
BUNDLE
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def page():
    """The page template, with the libraries' bundle inlined."""
    return PAGE.replace("BUNDLE", vl_convert.javascript_bundle(EMBED_HELD_CALLS, vl_version=VEGA_LITE))


def main():
    parser = stage_process.argument_parser(
        "src.plots_page", __doc__, "python -m src.plots_page eval/plots_page.html    # as `dvc repro` runs it"
    )
    parser.add_argument("out", help="the page template, as .dvc/config's plots.html_template names it")
    args = parser.parse_args()
    with stage_process.stage("plots_page"), atomic_path(args.out) as tmp:
        tmp.write_text(page(), encoding="utf-8")
    print(f"plots_page: {args.out} draws the plots with Vega-Lite {VEGA_LITE}, offline")


if __name__ == "__main__":
    main()
