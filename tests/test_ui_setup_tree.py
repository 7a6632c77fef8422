"""The OU/AU tree of User Auto-Provisioning Setup: how many users each folder holds, a filter that keeps the
path to each match, and a security-groups box that says how to add groups when there are none."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from directory.models import Integration
from directory.sources import connector_for
from passportal.models import PermissionLevel, SecurityGroup
from provisioning import sync
from provisioning.models import DirectoryLink, Mapping
from tests.fixtures_browser import (
    STAFF_PASSWORD,
    activated_site_admin,
    agent_integration,
    ou,
    person,
    push_directory,
    staff_user,
)
from tests.scim_helpers import GROUP, Scim, entra_user, scim_integration

SALES, EMEA, PARIS = ou(1, "Sales"), ou(2, "EMEA", parent=1, path="Corp/Sales/EMEA"), \
    ou(3, "Paris", parent=2, path="Corp/Sales/EMEA/Paris")
IT, EMPTY = ou(4, "IT"), ou(5, "Empty")
FOLDERS = [SALES, EMEA, PARIS, IT, EMPTY]


def people() -> list[dict]:
    """Sales 3, EMEA 2, Paris 4 (one of them disabled, one without email: still users it holds), IT 1."""
    where = [SALES] * 3 + [EMEA] * 2 + [PARIS] * 4 + [IT]
    users = [person(n, folder) for n, folder in enumerate(where, start=1)]
    users[5]["enabled"] = False
    users[6]["email"] = ""
    return users


def counts_on(page: str) -> dict[str, str]:
    """Folder name -> the count shown beside it."""
    rows = re.findall(r'data-folder-name="([^"]+)".*?</label>\s*(?:<span class="folder-users[^"]*" data-\w+="\d+">'
                      r'([^<]+)</span>)?', page, re.S)
    return {name: shown for name, shown in rows}


def setup_page(client, integration: Integration) -> str:
    response = client.get(reverse("provisioning:setup", args=[integration.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def site(client_org):
    activated_site_admin(client_org)
    return client_org


def test_r15_setup_tree_shows_how_many_users_each_folder_holds(staff_client, site):
    integration = agent_integration(site, FOLDERS, people())

    page = setup_page(staff_client, integration)

    # Users directly in each OU, as the agent's last complete upload holds them: a child OU counts its own.
    assert counts_on(page) == {"Sales": "3 users", "EMEA": "2 users", "Paris": "4 users", "IT": "1 user",
                               "Empty": "0 users"}
    assert "from the on-prem agent&#x27;s last complete upload" in page

    # A new upload is a new count.
    push_directory(integration, FOLDERS, [*people(), person(99, IT)])
    assert counts_on(setup_page(staff_client, integration))["IT"] == "2 users"


def test_r15_setup_tree_counts_a_scim_integrations_groups_from_what_was_pushed(staff_client, site):
    scim = Scim(scim_integration(site))
    ids = [scim.post("/Users", entra_user(f"user{n}@contoso.com"))[1]["id"] for n in range(3)]
    status, _ = scim.post("/Groups", {"schemas": [GROUP], "displayName": "Sales",
                                      "members": [{"value": ids[0]}, {"value": ids[1]}]})
    assert status == 201
    scim.delete(f"/Users/{ids[1]}")  # deleted: no longer a user the group holds

    counts = counts_on(setup_page(staff_client, scim.integration))

    assert counts == {"All users of this SCIM app": "2 users", "Sales": "1 user"}


def test_r15_setup_tree_says_when_the_directory_gives_no_user_counts(staff_client, site):
    """Direct reads see only the mapped folders' users: no number for the others, and the page says why."""
    integration = Integration.objects.create(client=site, name="Demo", kind="demo", base_dn="DC=contoso,DC=demo")
    page = setup_page(staff_client, integration)  # the first visit reads the folder tree
    assert 'id="folder-counts-note"' in page and "is not known here" in page
    assert 'class="folder-users' not in page, "no count where the portal does not know it"

    # A mapped folder shows the portal users its last sync linked, named as such.
    reader = connector_for(integration)
    folder = max(integration.folders.all(), key=lambda f: len(reader.read_users([f.external_id])))
    Mapping.objects.create(folder=folder, permission_level=PermissionLevel.objects.get(user_kind="site",
                                                                                       name="Site User"))
    sync.run_sync(integration, "command")
    linked = sum(folder.external_id in link.folder_ids
                 for link in DirectoryLink.objects.filter(integration=integration, in_scope=True))
    assert linked > 0
    page = setup_page(staff_client, integration)
    assert counts_on(page)[folder.name] == f"{linked} portal user{'s' if linked != 1 else ''}"
    assert sum(1 for shown in counts_on(page).values() if shown) == 1


def test_r15_security_groups_box_says_how_to_add_groups_when_the_client_has_none(staff_client, site):
    integration = agent_integration(site, FOLDERS, people())

    page = setup_page(staff_client, integration)
    assert 'id="no-security-groups"' in page
    assert "has no security groups yet" in page and "Or create a security group" in page
    assert f'{reverse("admin:passportal_securitygroup_add")}?client={site.pk}' in page
    assert 'name="security_groups"' not in page, "no empty list box to puzzle over"

    SecurityGroup.objects.create(client=site, name="Sales team")
    page = setup_page(staff_client, integration)
    assert 'id="no-security-groups"' not in page and 'name="security_groups"' in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_r15_setup_filter_keeps_the_path_to_each_match(chromium, live_server, client_org, settings):
    settings.TASKS_RUN_INLINE = True
    staff_user("boss", superuser=True)
    activated_site_admin(client_org)
    integration = agent_integration(client_org, FOLDERS, people())
    driver = chromium
    driver.delete_all_cookies()
    driver.get(live_server.url + "/admin/login/")
    driver.find_element(By.ID, "id_username").send_keys("boss")
    driver.find_element(By.ID, "id_password").send_keys(STAFF_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "user-tools")))
    driver.get(live_server.url + reverse("provisioning:setup", args=[integration.pk]))
    box = WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "folder-filter")))

    def shown() -> dict[str, str]:
        rows = driver.find_elements(By.CSS_SELECTOR, "#folder-tree .folder-row")
        return {row.find_element(By.CSS_SELECTOR, "input").get_attribute("data-folder-name"):
                ("match" if "folder-match" in row.get_attribute("class") else "path")
                for row in rows if row.is_displayed()}

    box.send_keys("par")
    assert shown() == {"Sales": "path", "EMEA": "path", "Paris": "match"}, "Paris, under the OUs it sits in"
    box.clear()
    box.send_keys("e")  # Sales, EMEA, Empty match; Paris sits under EMEA and does not
    assert shown() == {"Sales": "match", "EMEA": "match", "Empty": "match"}
    box.clear()
    box.send_keys("nothing like it")
    assert shown() == {} and driver.find_element(By.ID, "folder-filter-empty").is_displayed()
    box.clear()
    driver.execute_script("document.getElementById('folder-filter').dispatchEvent(new Event('input'))")
    assert set(shown()) == {"Sales", "EMEA", "Paris", "IT", "Empty"}
    assert not driver.find_element(By.ID, "folder-filter-empty").is_displayed()
    # The tree keeps its indentation: a child sits further right than its parent.
    rows = {r.find_element(By.CSS_SELECTOR, "input").get_attribute("data-folder-name"): r.location["x"]
            for r in driver.find_elements(By.CSS_SELECTOR, "#folder-tree .folder-row")}
    assert rows["Sales"] < rows["EMEA"] < rows["Paris"]
