"""Every page each role can reach, in both languages, on the demo city plus a brand-new agency with no data.

The crawl starts at `/` and follows every link of the app it finds (a few of each kind of page, and
every agency's page for each year with data, the year before and a year without any), so pages added
later are visited without editing this file. Each language is crawled on a server that has already
served the other one: a label worked out once per process would show up in the wrong language here.
No page may answer 5xx; a link the app itself shows may not lead to 403 or 404; every table header and
form label is in the user's language.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound

from app import create_app
from fleet.base import db
from fleet.base.models import Acquisition, User
from fleet.domain.demo import load_demo
from tests import factories

NEW_AGENCY = "濮阳市新成立测试中心"
NEW_USER = "xinjian"
LANGUAGES = ("zh", "en")
# Distinct addresses visited per endpoint (vehicle 17 looks like vehicle 18); agency pages are listed apart.
PER_ENDPOINT = 3
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")
# Latin words a Chinese page may show as they are: codes and names of formats and standards.
LATIN_IN_CHINESE = {"VIN", "Excel", "xlsx", "CSV", "API", "PNG", "GB", "ISO", "JSON", "SMTP", "URL"}
# Endpoints that answer a download or JSON rather than a page: fetched for their status only.
NOT_PAGES = re.compile(r"\.(xlsx|csv|json|js|css|png|ico)$|/annotated$|/original$|/template$|/status$")


class _Page(HTMLParser):
    """The links of a page and the text of its table headers and form labels."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.labels: list[str] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)
        if tag in ("th", "label"):
            self._open.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "label") and self._open:
            self.labels.append(" ".join("".join(self._open.pop()).split()))

    def handle_data(self, data: str) -> None:
        for text in self._open:
            text.append(data)


def wrong_language(text: str, language: str) -> bool:
    """Whether a header or label is not in the language: English may keep a Chinese term users must type
    (单位名称, 新增) inside an English phrase, but not stand in Chinese alone; Chinese may hold codes."""
    if not text:
        return False
    if language == "en":
        return bool(CJK.search(text)) and not LATIN_WORD.search(CJK.sub(" ", text))
    words = set(LATIN_WORD.findall(text))
    return not CJK.search(text) and bool(words - LATIN_IN_CHINESE)


@dataclass
class Crawl:
    visited: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    role: str
    agency_id: int | None


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The demo city and a brand-new agency with a user and no data, in a database of this module."""
    url = "sqlite:///" + str(tmp_path_factory.mktemp("crawl") / "fleet.sqlite3")
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "crawl-secret", "WTF_CSRF_ENABLED": False, "PROPAGATE_EXCEPTIONS": False})
    with app.app_context():
        session = db.get_session()
        demo = load_demo(session)
        new = factories.agency(session, NEW_AGENCY, kind="事业单位", sector="其他", county="范县")
        factories.user(session, NEW_USER, "agency", new.name)
        session.commit()
        people = [
            Person(name, password, role, session.scalar(sa.select(User.agency_id).where(User.username == name)))
            for name, password, role in demo.users
            if name in ("admin", "reviewer", "gongan")
        ] + [Person(NEW_USER, factories.PASSWORD, "agency", new.id)]
        first = session.scalar(sa.select(sa.func.min(Acquisition.acquired_on)))
        last = session.scalar(sa.select(sa.func.max(Acquisition.acquired_on)))
        agencies = list(session.scalars(sa.text("SELECT id FROM agencies ORDER BY id")))
    app.extensions["fleet.engine"].dispose()
    years = list(range(first.year - 1, last.year + 1)) + [first.year - 5]
    yield {"url": url, "people": people, "years": years, "agencies": agencies}


def _app(url: str) -> Flask:
    return create_app({"DATABASE_URL": url, "SECRET_KEY": "crawl-secret", "WTF_CSRF_ENABLED": False, "PROPAGATE_EXCEPTIONS": False})


def crawl(app: Flask, person: Person, language: str, agencies: list[int], years: list[int], *, check: bool = True) -> Crawl:
    """Log in, choose the language, and visit every page reachable by links, checking each; without
    `check`, one page of each kind is enough (the server only has to have served the language)."""
    client = app.test_client()
    response = client.post("/login", data={"username": person.username, "password": person.password})
    assert response.status_code == 302, f"{person.username} cannot log in"
    client.post("/language", data={"locale": language, "next": "/"})
    adapter = app.url_map.bind("localhost")
    result = Crawl()
    per_endpoint: dict[str, int] = defaultdict(int)
    queue = ["/"]
    if check:
        shown = agencies if person.agency_id is None else [person.agency_id]
        queue += [f"/agencies/{agency}?year={year}" for agency in shown for year in years]
    seen = set(queue)
    while queue:
        address = queue.pop(0)
        response = client.get(address, follow_redirects=True)
        result.visited[address] = response.status_code
        if response.status_code >= 500:
            result.problems.append(f"{address}: {response.status_code}")
            continue
        if response.status_code in (403, 404):
            result.problems.append(f"{address}: {response.status_code} behind a link the app shows")
            continue
        if response.mimetype != "text/html" or NOT_PAGES.search(urlsplit(address).path):
            continue
        page = _Page()
        page.feed(response.get_data(as_text=True))
        if check:
            for text in page.labels:
                if wrong_language(text, language):
                    result.problems.append(f"{address}: header or label not in {language}: {text!r}")
        for href in page.links:
            href = urldefrag(href)[0]
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path.startswith("/") or href in seen:
                continue
            try:
                endpoint, _ = adapter.match(parts.path, method="GET")
            except (NotFound, MethodNotAllowed):
                result.problems.append(f"{address}: link to {href} that nothing answers")
                continue
            if endpoint in ("auth.logout", "static"):
                continue
            seen.add(href)
            per_endpoint[endpoint] += 1
            if per_endpoint[endpoint] <= (PER_ENDPOINT if check else 1):
                queue.append(href)
    return result


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_of_every_role_in_both_languages(city: dict, language: str) -> None:
    """A fresh server serves every kind of page in the other language first, then every page in this one."""
    app = _app(city["url"])
    other = next(other for other in LANGUAGES if other != language)
    try:
        for person in city["people"]:
            crawl(app, person, other, city["agencies"], city["years"], check=False)
        problems: list[str] = []
        visited = 0
        for person in city["people"]:
            result = crawl(app, person, language, city["agencies"], city["years"])
            visited += len(result.visited)
            problems += [f"{person.username} {p}" for p in result.problems]
        assert not problems, f"{len(problems)} problems, the first:\n" + "\n".join(problems[:40])
        assert visited > 200
    finally:
        app.extensions["fleet.engine"].dispose()
