"""The summary box's freshness mark, filled at build time from the same answer as `compendium status --book`."""

from compendium import bookstale

BOX = '<div class="cv-summary"><p>Executed at the paper profile.<span class="cv-stale"></span></p></div>'


def test_stale_and_fresh_marks():
    stale = bookstale.mark(BOX, "no (inputs changed)")
    assert "<b>Stale</b>: the code or data it depends on changed since this run" in stale and bookstale.PLACEHOLDER not in stale
    fresh = bookstale.mark(BOX, "yes")
    assert "Up to date with the code and data" in fresh and "Stale" not in fresh


def test_an_unknown_answer_is_shown_as_it_is():
    assert "freshness unknown (ParameterError)" in bookstale.mark(BOX, "unknown (ParameterError)")


def test_pages_without_a_box_or_an_answer_are_left_alone():
    assert bookstale.mark("<p>no box</p>", "no (inputs changed)") == "<p>no box</p>"
    assert bookstale.mark(BOX, None) == BOX


def test_the_extension_fills_the_page_from_status_book(monkeypatch):
    handlers = []

    class App:
        def connect(self, event, fn):
            handlers.append((event, fn))

    monkeypatch.setattr(bookstale, "_freshness", lambda: {"gfs/gfs": "no (inputs changed)", "gfs/tfi": "yes"})
    assert bookstale.setup(App())["parallel_read_safe"]
    (event, on_page), = handlers
    assert event == "html-page-context"
    context = {"body": BOX}
    on_page(None, "gfs/gfs", "page.html", context, None)
    assert "<b>Stale</b>" in context["body"]
    context = {"body": BOX}
    on_page(None, "gfs/tfi", "page.html", context, None)
    assert "Up to date" in context["body"]
