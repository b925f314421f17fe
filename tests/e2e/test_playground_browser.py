"""The playground in a real browser: Debian's chromium driven by Playwright (`executable_path`;
`make test` installs the package where it is missing and it can). Signed in with a token in the
URL's fragment, as `make dev` prints it, the page creates a session, shows an answer streaming
in (reasoning folded) before its turn ends, stops a long answer, queues a follow-up while a tool
runs and shows it delivered, re-attaches to a running turn after a reload (resuming after the
last event it had shown), and after a reload shows the history PostgreSQL holds. A screenshot of
the finished turns is written to `<pytest basetemp>/playground/finished-turn.png`."""

import os
import shutil
from pathlib import Path

import pytest

from local.model import chunks
from tests.support.helpers import marker, session_rows
from tests.support.scripted_model import Stream, text_reply, tool_call_reply
from tests.support.servers import api_with
from tests.support.users import make_user

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
# What a headless chromium needs here: no sandbox as root, no GPU, and none of its own calls to
# Google's servers (refused on a machine without internet access, many at a time).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions"]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium: `make test` installs Debian's `chromium` package as root (apt-get); "
                             "without root or apt-get, install it by hand or set CHROMIUM_PATH")


def words(prefix: str, count: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))


@pytest.fixture
async def browser_page():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            yield page
        finally:
            await browser.close()


@pytest.mark.timeout(120)
async def test_a_person_chats_in_the_playground(settings, worker, scripted, stack, browser_page, tmp_path_factory):
    from playwright.async_api import expect

    page = browser_page
    expect.set_options(timeout=15_000)
    user = make_user(settings)
    tag = marker()
    story = words("s", 120)
    resumed = words("r", 40)
    scripted.script(
        tag,
        # 1: reasoning, then an answer that streams for a second
        Stream([chunks.reasoning("Weighing the question."),
                *text_reply(words("w", 30)).parts], delay=0.03),
        # 2: a long story, stopped
        text_reply(story, delay=0.05),
        # 3: a tool round slow to start (the follow-up is queued meanwhile), then the answer
        Stream(tool_call_reply("get_current_time", {"timezone": "UTC"}).parts, first_delay=1.0),
        text_reply("It is noon, and the follow-up arrived.", delay=0.08),
        # 4: an answer still streaming when the page reloads
        text_reply(resumed, delay=0.04),
    )
    resume_requests: list[dict] = []
    page.on("request", lambda request: resume_requests.append(request.headers)
            if request.method == "GET" and request.url.endswith("/stream") else None)

    async with api_with(settings, playground_enabled=True) as http:
        base = str(http.base_url).rstrip("/")
        await page.goto(f"{base}/playground#token={user.token}")
        await expect(page.get_by_test_id("tier")).to_have_text("FREE")
        assert "token=" not in page.url  # taken out of the address bar

        # A new session, and a first message whose answer streams in.
        await page.click("#new-session")
        await expect(page.locator("#composer")).to_be_visible()
        session_id = page.url.split("#session=")[1]
        status = page.get_by_test_id("status")
        answer = page.get_by_test_id("live-answer").last
        await page.fill("#input", f"Hello {tag}")
        await page.press("#input", "Enter")
        await expect(answer.locator(".text")).to_contain_text("w3")
        await expect(status).to_have_attribute("data-state", "streaming")  # text shown before the turn ended
        await expect(status).to_have_attribute("data-state", "idle")
        history = page.locator("#history")
        await expect(history.locator(".bubble.assistant").last.locator(".text")).to_have_text(words("w", 30))
        assert not await history.locator("details.reasoning").last.get_attribute("open")  # reasoning folded
        await expect(page.get_by_test_id("sessions")).to_contain_text(f"Hello {tag}")

        # A long answer, stopped: the session is idle and says so.
        await page.fill("#input", "Tell me a long story")
        await page.press("#input", "Enter")
        await expect(answer.locator(".text")).to_contain_text("s5")
        await page.click("#stop")
        await expect(status).to_have_attribute("data-state", "idle")
        await expect(history.locator(".note").last).to_have_text("stopped by user")

        # A follow-up sent while a tool round runs: queued (202, the buffer shown), then delivered.
        await page.fill("#input", "What time is it?")
        await page.press("#input", "Enter")
        await expect(status).to_have_attribute("data-state", "streaming")
        await page.fill("#input", "And is the follow-up there?")
        await page.press("#input", "Enter")
        await expect(page.get_by_test_id("queued")).to_contain_text("queued 1/10")
        await expect(answer.locator(".bubble.delivered")).to_have_text("And is the follow-up there?")
        await expect(page.get_by_test_id("queued")).to_have_count(0)
        await expect(status).to_have_attribute("data-state", "idle")
        last = history.locator(".bubble.assistant").last
        await expect(last.locator(".text")).to_have_text("It is noon, and the follow-up arrived.")
        await expect(history.locator(".tool-call summary").last).to_contain_text("get_current_time — done")
        await history.locator(".tool-call summary").last.click()  # opened, for the screenshot
        shot = tmp_path_factory.getbasetemp() / "playground" / "finished-turn.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(shot), full_page=True)

        # A reload while an answer streams: the page re-attaches and resumes after the last event it showed.
        await page.fill("#input", "One more, please")
        await page.press("#input", "Enter")
        await expect(answer.locator(".text")).to_contain_text("r5")
        resume_requests.clear()
        await page.reload()
        await expect(history.locator(".bubble.assistant").last.locator(".text")).to_have_text(resumed)
        await expect(status).to_have_attribute("data-state", "idle")
        assert resume_requests and resume_requests[0].get("last-event-id"), resume_requests

        # The history, as PostgreSQL holds it.
        await page.reload()
        rows = await session_rows(stack.database_url, session_id)
        typed = [r["content"] for r in rows if r["role"] == "user"]
        assert typed == [f"Hello {tag}", "Tell me a long story", "What time is it?", "And is the follow-up there?",
                         "One more, please"]
        await expect(history.locator(".bubble.user")).to_have_text(typed)
        answers = [r["content"] for r in rows if r["role"] == "assistant" and r["content"]]
        await expect(history.locator(".bubble.assistant .text")).to_have_count(len(answers))
        for node, text in zip(await history.locator(".bubble.assistant .text").all(), answers):
            await expect(node).to_have_text(text)
        await page.goto("about:blank")  # no connection left open as the API stops
    assert Path(shot).stat().st_size > 10_000
    print(f"\nscreenshot of the finished turns: {shot}")
