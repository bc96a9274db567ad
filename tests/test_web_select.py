"""The forms' select widget writes plain options itself (fleet.web.forms.Select): the same options,
labels and selection as WTForms' own widget, escaped the same way."""

from __future__ import annotations

from html.parser import HTMLParser

import wtforms
from werkzeug.datastructures import MultiDict
from wtforms import Form, SelectChoice

from fleet.web.forms import SelectField

CHOICES = [SelectChoice(v, label) for v, label in [("", "全部"), ("a<b", 'quote " and <tag> & amp'), ("濮阳县", "濮阳县"), ("x", "")]]


class Options(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.options: list[tuple[str, bool]] = []
        self.labels: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "option":
            found = dict(attrs)
            self.options.append((found["value"], "selected" in found))
            self.labels.append("")

    def handle_data(self, data):
        if self.labels:
            self.labels[-1] += data


def parsed(html: str) -> tuple[list, list]:
    parser = Options()
    parser.feed(html)
    return parser.options, parser.labels


def test_options_read_as_wtforms_own_widget_writes_them():
    class Ours(Form):
        county = SelectField(choices=CHOICES)

    class Theirs(Form):
        county = wtforms.SelectField(choices=CHOICES)

    for chosen in ("", "a<b", "濮阳县"):
        data = MultiDict({"county": chosen})
        ours, theirs = str(Ours(data).county()), str(Theirs(data).county())
        assert parsed(ours) == parsed(theirs)
        assert parsed(ours)[0][[choice.value for choice in CHOICES].index(chosen)] == (chosen, True)
    assert "<tag>" not in ours and "&lt;tag&gt;" in ours
    assert parsed(ours)[1][-1] == "x"  # an empty label shows the value, as WTForms does
