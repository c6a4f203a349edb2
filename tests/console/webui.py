"""The Temporal Web UI 2.54 as an operator uses it, driven through a real browser.

Selectors are the UI's own ``data-testid``s and ARIA roles where it has them; every wait
has a deadline (WebDriverWait), and a failed wait says what it was waiting for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

UPDATE_DIALOG = "dialog[data-testid=update-confirmation-modal]"


class WebUI:
    """One browser on one Web UI, in namespace ``default``; screenshots land in ``artifacts``."""

    def __init__(self, browser: Chrome, base: str, artifacts: Path, *, timeout: float = 30.0) -> None:
        self.browser = browser
        self.base = base
        self.artifacts = artifacts
        self.timeout = timeout
        self._requests: list[dict[str, Any]] = []  # Chromium hands its log out once: kept here

    # --- waiting -------------------------------------------------------------------

    def until(self, check: Callable[[], Any], what: str, timeout: float | None = None) -> Any:
        """Poll ``check`` (stale elements count as not yet) until it answers something truthy."""
        def probe(_: Chrome) -> Any:
            try:
                return check()
            except StaleElementReferenceException:
                return None
        try:
            return WebDriverWait(self.browser, timeout or self.timeout, poll_frequency=0.2).until(probe)
        except TimeoutException:
            self.screenshot("timed-out")
            raise AssertionError(f"Web UI at {self.browser.current_url}: {what} did not happen within "
                                 f"{timeout or self.timeout}s; see {self.artifacts}") from None

    def visible(self, css: str, root: WebElement | None = None) -> list[WebElement]:
        # The UI renders some controls twice (a desktop and a mobile layout); only one is displayed.
        return [element for element in (root or self.browser).find_elements(By.CSS_SELECTOR, css)
                if element.is_displayed()]

    def one(self, css: str, root: WebElement | None = None) -> WebElement:
        found: WebElement = self.until(lambda: next(iter(self.visible(css, root)), None), f"{css} shown")
        return found

    def body_text(self) -> str:
        return str(self.browser.find_element(By.TAG_NAME, "body").text)

    def screenshot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.browser.save_screenshot(str(path))
        return path

    # --- pages ---------------------------------------------------------------------

    def open_list(self, query: str = "") -> None:
        """The workflow list, filtered by a List Filter query as a saved view is."""
        self.browser.get(f"{self.base}/namespaces/default/workflows" + (f"?query={quote(query)}" if query else ""))

    def list_rows(self) -> str:
        return "\n".join(row.text for row in self.visible("table tbody tr"))

    def open_workflow(self, workflow_id: str, tab: str = "") -> None:
        """The workflow's page (latest run); ``tab`` is a tab's URL name (``history``, ``query``, ``user-metadata``)."""
        self.browser.get(f"{self.base}/namespaces/default/workflows/{quote(workflow_id)}")
        self.until(lambda: workflow_id in self.body_text(), f"the page of {workflow_id}")
        if tab:
            self.browser.get(self.browser.current_url.rsplit("/", 1)[0] + f"/{tab}")

    def input_text(self) -> str:
        """The workflow's input as the page shows it (decoded only when the UI has a codec endpoint)."""
        return self.one("[data-testid=input-and-result] [role=textbox][aria-label=Input]").text

    def run_query(self, name: str) -> str:
        """Queries tab: pick ``name`` (listed once the UI read the workflow's definitions), run it, its answer."""
        self.one("[data-testid=query-select-button]").click()
        self.until(lambda: next((option for option in self.visible("#query-select-select [role=option]")
                                 if option.text.strip() == name), None), f"query {name!r} listed").click()
        self.until(lambda: next((button for button in self.visible("button")
                                 if button.text.strip() in ("Run Query", "Refresh Query")), None),
                   "the Run Query button").click()
        answer: str = self.until(lambda: self.one("[data-testid=query-result]").text.strip(), f"an answer to {name}")
        return answer

    def current_details(self) -> str:
        """User Metadata tab: the workflow's current details, the markdown it set (the UI renders it in a frame)."""
        source = self.one("iframe#user-metadata-current-details").get_attribute("src") or ""
        return parse_qs(urlparse(source).query).get("content", [""])[0]

    def send_update(self, name: str, data: dict[str, Any], *, shot: str = "") -> None:
        """More Actions → Send an Update: pick the name, type the JSON input as a person does, submit."""
        self.one("button[aria-controls=workflow-actions]").click()
        self.one("[data-testid=update-button]").click()
        dialog = self.one(UPDATE_DIALOG)
        # The names are a list only when the UI could read the workflow's definitions (its
        # metadata query, whose answer the codec endpoint decrypts); otherwise a text field.
        self.one("[data-testid=update-select-button]", dialog).click()
        self.until(lambda: next((option for option in self.visible("#update-select-select [role=option]", dialog)
                                 if option.text.split("\n")[0].strip() == name), None),
                   f"update {name!r} listed").click()
        editor = self.one("[role=textbox][aria-label=Data]", dialog)
        editor.click()
        editor.send_keys(json.dumps(data))  # the editor closes brackets and quotes; typing over them is a no-op
        # Leaving the editor commits its text (and pretty-prints it); a click on Submit
        # that is also that blur can be lost to the re-layout.
        self.one("#update-id", dialog).click()
        self.until(lambda: json.loads(editor.text) == data, f"the Data editor holding {data}")
        if shot:
            self.screenshot(shot)
        submit = self.one("[data-testid=confirm-modal-button]", dialog)
        self.until(submit.is_enabled, "Submit enabled")
        submit.click()
        self.until(lambda: not self.visible(UPDATE_DIALOG), "the update dialog closing (the update accepted)")

    def network(self, needle: str) -> list[dict[str, Any]]:
        """Requests the page made whose URL contains ``needle``: URL, method, body (from Chromium's log)."""
        for entry in self.browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                request = message["params"]["request"]
                self._requests.append({"url": request["url"], "method": request["method"],
                                       "body": request.get("postData")})
        return [request for request in self._requests if needle in request["url"]]
