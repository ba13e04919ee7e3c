"""The operations page in headless Chromium, after ``careflow up --seed-demo``: a person
signs in as a role at a facility, sees the board, the queues, the inbox and the charts
filled by the seeded instances, claims and completes a task from the page, opens an
instance, and moves around by keyboard; another role does not see subjects it does not
work. Screenshots land under test-output/browser/."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

WAIT = 30  # seconds for the page to show what the API answers
ROLE, FACILITY = "department_manager", "fac-north"  # approves the seeded requisitions


def _api(base: str, path: str, *, token: str | None = None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=20) as answer:
        return json.loads(answer.read())


def _sign_in(driver, base: str, role: str, facility: str) -> None:
    driver.get(f"{base}/ops")
    wait = WebDriverWait(driver, WAIT)
    wait.until(lambda d: len(Select(d.find_element(By.ID, "role")).options) > 0)
    Select(driver.find_element(By.ID, "role")).select_by_value(role)
    Select(driver.find_element(By.ID, "facility")).select_by_value(facility)
    driver.find_element(By.ID, "sign-in-submit").click()
    wait.until(lambda d: d.find_element(By.ID, "updated").text.startswith("Updated"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#charts figure"))


def _css(driver, selector: str) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def test_a_person_works_the_seeded_cloud_from_the_ops_page(seeded_cloud, browser):
    base = seeded_cloud.api_base
    browser.get(f"{base}/ops")
    WebDriverWait(browser, WAIT).until(
        lambda d: len(Select(d.find_element(By.ID, "role")).options) > 0
    )
    screenshot(browser, "ops-1-sign-in")
    _sign_in(browser, base, ROLE, FACILITY)
    assert browser.find_element(By.ID, "app-error").text == ""
    assert "department manager" in browser.find_element(By.ID, "signed-in").text

    # what the API holds for this role, to compare with what the page shows
    session = _api(base, "/ops/sign-in", body={"role": ROLE, "facility": FACILITY})
    board = _api(base, f"/v1/board?facility={FACILITY}", token=session["token"])
    queues = _api(base, f"/v1/queues?facility={FACILITY}", token=session["token"])
    running = {w["workflow_id"]: w["running"] for w in board["workflows"]}
    assert sum(running.values()) > 0, running

    # the board: one section per workflow, a card per listed instance
    sections = {s.get_attribute("data-workflow"): s for s in _css(browser, "[data-workflow]")}
    assert set(sections) == set(running)
    listed = sum(w["listed"] for w in board["workflows"])
    assert len(_css(browser, "button.instance")) == listed > 0
    for workflow_id, count in running.items():
        assert f"{count} running" in sections[workflow_id].text

    # the queues: a row per queue with open tasks, this role's marked
    rows = {r.get_attribute("data-queue"): r for r in _css(browser, "#queues-body tr")}
    assert set(rows) == {q["queue"] for q in queues["queues"]}
    assert "works it" in rows[ROLE].text

    # the inbox: the open tasks of the queues this role works
    mine = sum(q["open"] for q in queues["queues"] if q["may_work"])
    items = _css(browser, "#inbox-list li.task")
    assert len(items) == mine > 0
    # each says its priority and why; the scored ones first, highest first
    lines = [i.find_element(By.CSS_SELECTOR, "p.priority").text for i in items]
    assert all(line.startswith("Priority") for line in lines)
    scores = [int(line.split()[1].split("%")[0]) for line in lines if "not scored" not in line]
    assert scores == sorted(scores, reverse=True)
    assert lines[: len(scores)] == [line for line in lines if "not scored" not in line]

    # the KPIs: the six enterprise cards, and charts with bars from the seeded runs
    cards = {c.get_attribute("data-kpi") for c in _css(browser, "#enterprise .card")}
    assert cards == {
        "authorization_turnaround",
        "discharge_delay_causes",
        "stockout_risk",
        "invoice_exception_aging",
        "sla_adherence",
        "model_override_rate",
    }
    charts = {f.get_attribute("data-kpi"): f for f in _css(browser, "#charts figure")}
    assert {"started", "ended", "sla_adherence_series", "tasks_opened"} <= set(charts)
    assert charts["started"].find_elements(By.CSS_SELECTOR, "svg rect")
    assert _css(browser, f'#heatmap-body tr[data-facility="{FACILITY}"] td')
    screenshot(browser, "ops-2-signed-in")

    # claim the first task, then complete it with a decision and a reason
    task_id = items[0].get_attribute("data-task-id")
    instance_of = items[0].get_attribute("data-instance-id")
    item = f'#inbox-list li[data-task-id="{task_id}"]'
    browser.find_element(By.CSS_SELECTOR, f"{item} button.claim").click()
    WebDriverWait(browser, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"{item} select.decision")
    )
    screenshot(browser, "ops-3-claimed")
    decision = Select(browser.find_element(By.CSS_SELECTOR, f"{item} select.decision"))
    chosen = decision.options[0].get_attribute("value")
    decision.select_by_value(chosen)
    browser.find_element(By.CSS_SELECTOR, f"{item} input.reason").send_keys("within budget")
    browser.find_element(By.CSS_SELECTOR, f"{item} button.complete").click()
    WebDriverWait(browser, WAIT).until(lambda d: not d.find_elements(By.CSS_SELECTOR, item))
    screenshot(browser, "ops-4-completed")
    # the API agrees: the task is no longer open on its instance, and the decision is kept
    detail = _api(base, f"/v1/instances/{instance_of}", token=session["token"])
    assert task_id not in {t["task_id"] for t in detail["open_tasks"]}

    # open an instance of a workflow this role works: its milestones in a dialog, closed
    # by Escape
    board = _api(base, f"/v1/board?facility={FACILITY}", token=session["token"])
    card = next(
        c
        for w in board["workflows"]
        if w["subjects_visible"]
        for m in w["milestones"]
        for c in m["instances"]
    )
    opened = card["instance_id"]
    WebDriverWait(browser, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f'button.instance[data-instance-id="{opened}"]')
    )
    button = browser.find_element(By.CSS_SELECTOR, f'button.instance[data-instance-id="{opened}"]')
    button.click()
    WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "instance").is_displayed())
    assert opened in browser.find_element(By.ID, "instance-title").text
    assert card["subject_id"] in browser.find_element(By.ID, "instance-facts").text
    assert _css(browser, "#instance-milestones li")
    screenshot(browser, "ops-5-instance")
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    WebDriverWait(browser, WAIT).until(
        lambda d: not d.find_element(By.ID, "instance").is_displayed()
    )


def test_the_page_is_usable_by_keyboard_and_names_every_control(seeded_cloud, browser):
    base = seeded_cloud.api_base
    browser.get(f"{base}/ops")
    WebDriverWait(browser, WAIT).until(
        lambda d: len(Select(d.find_element(By.ID, "role")).options) > 0
    )
    # the sign-in starts on the role; before it, only the skip link
    assert browser.switch_to.active_element.get_attribute("id") == "role"
    role = browser.switch_to.active_element
    ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    assert "skip" in (browser.switch_to.active_element.get_attribute("class") or "")
    # sign in with the keyboard only: type to pick, Tab to move, Enter to sign in
    role.send_keys("department manager")
    assert Select(role).first_selected_option.get_attribute("value") == ROLE
    role.send_keys(Keys.TAB)  # the person
    browser.switch_to.active_element.send_keys(Keys.TAB)  # the facility
    facility = browser.switch_to.active_element
    assert facility.get_attribute("id") == "facility"
    facility.send_keys("North")
    facility.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "sign-in-submit"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(browser, WAIT).until(
        lambda d: d.find_element(By.ID, "updated").text.startswith("Updated")
    )
    assert "North Valley" in browser.find_element(By.ID, "signed-in").text
    unnamed = browser.execute_script(
        """
        const named = (e) => (e.labels && e.labels.length) || e.getAttribute('aria-label')
          || (e.textContent || '').trim();
        return [...document.querySelectorAll('button, select, input, a[href]')]
          .filter((e) => e.offsetParent !== null && !named(e))
          .map((e) => e.outerHTML.slice(0, 80));
        """
    )
    assert unnamed == []
    # every control on the page is reachable by Tab (none has a negative tabindex)
    assert not _css(browser, "button[tabindex^='-'], select[tabindex^='-'], a[tabindex^='-']")
    # the section links move the focus to their section
    browser.find_element(By.CSS_SELECTOR, "nav a[href='#queues']").send_keys(Keys.ENTER)
    WebDriverWait(browser, WAIT).until(
        lambda d: d.switch_to.active_element.get_attribute("id") == "queues"
    )


def test_a_role_sees_no_subject_of_a_workflow_it_does_not_work(seeded_cloud, browser):
    base = seeded_cloud.api_base
    coordinator = _api(
        base, "/ops/sign-in", body={"role": "care_coordinator", "facility": FACILITY}
    )
    board = _api(base, f"/v1/board?facility={FACILITY}", token=coordinator["token"])
    surgical = next(w for w in board["workflows"] if w["workflow_id"] == "surgical-case-readiness")
    subjects = [c["subject_id"] for m in surgical["milestones"] for c in m["instances"]]
    assert subjects and all(subjects), "the coordinator sees the cases' subjects"
    _sign_in(browser, base, "ap_clerk", FACILITY)
    section = browser.find_element(By.CSS_SELECTOR, '[data-workflow="surgical-case-readiness"]')
    assert "Subjects are not shown to your role." in section.text
    page = browser.page_source
    assert not [s for s in subjects if s in page]
    screenshot(browser, "ops-6-ap-clerk")
    # its cards open what the board says, not the instance; the API refuses the clerk it
    section.find_element(By.CSS_SELECTOR, "button.instance").click()
    WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "instance").is_displayed())
    assert "not shown to your role" in browser.find_element(By.ID, "instance-facts").text
    assert not [s for s in subjects if s in browser.page_source]
    clerk = _api(base, "/ops/sign-in", body={"role": "ap_clerk", "facility": FACILITY})
    hidden = surgical["milestones"][0]["instances"][0]["instance_id"]
    try:
        _api(base, f"/v1/instances/{hidden}", token=clerk["token"])
        refused = None
    except urllib.error.HTTPError as exc:
        refused = exc.code
    assert refused == 404
