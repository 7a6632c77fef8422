"""Integration admin: write-only secrets (R25), TLS warning, Test connection, agent token, folder tree."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse

from directory.folders import record_folders
from directory.models import AdMode, Folder, Integration, IntegrationKind, hash_token
from directory.upload_start import start_upload
from tests.fixtures_browser import STAFF_PASSWORD, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, db):
    admin = get_user_model().objects.create_superuser("root", "root@msp.test", "a-long-test-password")
    client.force_login(admin)
    return client


def form_data(client_pk: int, **overrides) -> dict:
    data = {
        "client": client_pk, "name": "Corp AD", "kind": "ad", "link_enabled": "on",
        "disable_threshold_percent": 10, "disable_threshold_minimum": 25, "ad_mode": "direct",
        "ldap_urls": "ldaps://127.0.0.1:636", "base_dn": "DC=corp,DC=example,DC=test",
        "bind_dn": "CN=Administrator,CN=Users,DC=corp,DC=example,DC=test", "new_bind_password": "",
        "tls_mode": "ldaps", "tls_ca_pem": "", "tls_verify": "on", "page_size": 500, "entra_role": "",
        "tenant": "", "app_client_id": "", "new_client_secret": "", "login_host": "login.microsoftonline.com",
        "graph_base_url": "https://graph.microsoft.com/v1.0",
        "folders-TOTAL_FORMS": "0", "folders-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def stored_column(integration: Integration, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM directory_integration WHERE id = %s", [integration.pk])
        return cursor.fetchone()[0]


def change_url(integration: Integration) -> str:
    return reverse("admin:directory_integration_change", args=[integration.pk])


def test_every_directory_admin_page_loads(staff_client, client_org):
    ad = Integration.objects.create(client=client_org, name="AD", kind=IntegrationKind.ACTIVE_DIRECTORY,
                                    ad_mode=AdMode.AGENT)
    demo = Integration.objects.create(client=client_org, name="Demo", kind=IntegrationKind.DEMO,
                                      base_dn="DC=contoso,DC=demo")
    folder = Folder.objects.create(integration=ad, kind="ou", external_id="x", name="Sales", path="Corp/Sales")
    upload = start_upload(ad, directory_id="corp.test", agent_version="1")
    for url in (
        reverse("admin:directory_integration_changelist"), reverse("admin:directory_integration_add"),
        change_url(ad), change_url(demo),
        reverse("admin:directory_folder_changelist"), reverse("admin:directory_folder_change", args=[folder.pk]),
        reverse("admin:directory_agentupload_changelist"),
        reverse("admin:directory_agentupload_change", args=[upload.pk]),
    ):
        assert staff_client.get(url).status_code == 200, url


def test_r25_the_bind_password_is_write_only_and_stored_encrypted(staff_client, client_org):
    response = staff_client.post(reverse("admin:directory_integration_add"),
                                 form_data(client_org.pk, new_bind_password="S3cret-Bind-Pw"))
    assert response.status_code == 302, response.content.decode()[:3000]
    integration = Integration.objects.get(name="Corp AD")
    assert integration.bind_password == "S3cret-Bind-Pw"
    assert stored_column(integration, "bind_password").startswith("fernet:")
    assert "S3cret-Bind-Pw" not in stored_column(integration, "bind_password")

    page = staff_client.get(change_url(integration)).content.decode()
    assert "S3cret-Bind-Pw" not in page and "Stored (hidden)" in page

    # Blank keeps the stored secret; a new value replaces it.
    staff_client.post(change_url(integration), form_data(client_org.pk, name="Corp AD 2"))
    integration.refresh_from_db()
    assert integration.name == "Corp AD 2" and integration.bind_password == "S3cret-Bind-Pw"
    staff_client.post(change_url(integration), form_data(client_org.pk, new_bind_password="N3w-Bind-Pw"))
    integration.refresh_from_db()
    assert integration.bind_password == "N3w-Bind-Pw"


def test_direct_mode_needs_the_connection_settings(staff_client, client_org):
    response = staff_client.post(reverse("admin:directory_integration_add"),
                                 form_data(client_org.pk, ldap_urls="", bind_dn="", tls_ca_pem="not a pem"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) >= {"ldap_urls", "bind_dn", "new_bind_password", "tls_ca_pem"}
    assert not Integration.objects.exists()

    response = staff_client.post(reverse("admin:directory_integration_add"),
                                 form_data(client_org.pk, ldap_urls="http://dc1", new_bind_password="pw",
                                           base_dn="corp.example.test"))
    errors = response.context["adminform"].form.errors
    assert "is not an LDAP URL" in str(errors["ldap_urls"]) and "This is not a DN" in str(errors["base_dn"])


def test_turning_verification_off_shows_a_warning(staff_client, client_org):
    response = staff_client.post(reverse("admin:directory_integration_add"),
                                 form_data(client_org.pk, tls_verify=None, new_bind_password="pw"), follow=True)
    page = response.content.decode()
    assert "Certificate verification is off" in page
    integration = Integration.objects.get()
    assert not integration.tls_verify
    assert "Certificate verification is off" in staff_client.get(change_url(integration)).content.decode()


@pytest.mark.samba
def test_test_connection_shows_the_connectors_report_or_its_error(staff_client, client_org, samba_dc, samba_ou):
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("adm"), "Admin", "Test", "adm@corp.example.test")
    integration = Integration.objects.create(
        client=client_org, name="Corp AD", kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.DIRECT,
        ldap_urls=samba_dc.ldaps_url, base_dn=samba_ou, bind_dn=samba_dc.admin_bind_dn,
        bind_password=samba_dc.admin_password, tls_ca_pem=samba_dc.ca_pem,
    )
    url = reverse("admin:directory_integration_test_connection", args=[integration.pk])

    page = staff_client.post(url, follow=True).content.decode()
    assert "Connected to ldaps://127.0.0.1:636" in page and "1 OUs and 1 users" in page

    integration.bind_password = "wrong-password"
    integration.save()
    page = staff_client.post(url, follow=True).content.decode()
    assert "wrong password for" in page and "wrong-password" not in page


def test_test_connection_on_the_demo_directory_and_as_a_list_action(staff_client, client_org):
    demo = Integration.objects.create(client=client_org, name="Demo", kind=IntegrationKind.DEMO,
                                      base_dn="DC=contoso,DC=demo")
    agent = Integration.objects.create(client=client_org, name="Agent AD", kind=IntegrationKind.ACTIVE_DIRECTORY,
                                       ad_mode=AdMode.AGENT)
    response = staff_client.post(reverse("admin:directory_integration_changelist"),
                                 {"action": "test_connection", "_selected_action": [demo.pk, agent.pk]}, follow=True)
    page = response.content.decode()
    assert "12 OUs and 58 users" in page
    assert "has not completed an upload yet" in page  # the agent has not pushed: said, not crashed


def test_r25_the_agent_token_is_shown_once_and_only_its_hash_is_stored(staff_client, client_org):
    integration = Integration.objects.create(client=client_org, name="Agent AD",
                                             kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.AGENT)
    url = reverse("admin:directory_integration_agent_token", args=[integration.pk])
    assert "Create agent token" in staff_client.get(change_url(integration)).content.decode()
    assert staff_client.get(url).status_code == 405  # issuing a token changes state: POST only

    response = staff_client.post(url)
    token = response.context["token"]
    assert token in response.content.decode() and "no-store" in response["Cache-Control"]
    integration.refresh_from_db()
    assert integration.agent_token_hash == hash_token(token) and token not in stored_column(
        integration, "agent_token_hash")
    page = staff_client.get(change_url(integration)).content.decode()
    assert token not in page and "Rotate agent token" in page and integration.agent_token_hint in page

    rotated = staff_client.post(url).context["token"]
    integration.refresh_from_db()
    assert rotated != token and integration.agent_token_hash == hash_token(rotated)


def test_agent_tokens_are_only_for_agent_mode(staff_client, client_org):
    demo = Integration.objects.create(client=client_org, name="Demo", kind=IntegrationKind.DEMO)
    response = staff_client.post(reverse("admin:directory_integration_agent_token", args=[demo.pk]), follow=True)
    assert "Agent tokens are for Active Directory integrations in agent mode" in response.content.decode()
    demo.refresh_from_db()
    assert demo.agent_token_hash == ""


def test_the_folder_tree_is_shown_with_gone_folders_marked(staff_client, client_org):
    from directory.connectors.base import FolderRecord

    integration = Integration.objects.create(client=client_org, name="AD", kind=IntegrationKind.ACTIVE_DIRECTORY,
                                             ad_mode=AdMode.AGENT)
    corp = FolderRecord(id="11111111-1111-1111-1111-111111111111", name="Corp", kind="ou", path="Corp")
    sales = FolderRecord(id="22222222-2222-2222-2222-222222222222", name="Sales", kind="ou", parent_id=corp.id,
                         path="Corp/Sales")
    record_folders(integration, [corp, sales])
    record_folders(integration, [corp])

    page = staff_client.get(change_url(integration)).content.decode()
    assert "Corp/Sales" in page and "Folder tree" in page
    corp_row = Folder.objects.get(external_id=corp.id)
    folder_page = staff_client.get(reverse("admin:directory_folder_change", args=[corp_row.pk])).content.decode()
    assert "Corp/Sales (gone)" in folder_page


def test_r25_test_connection_is_a_post_for_staff_who_may_change_the_integration(client_org):
    demo = Integration.objects.create(client=client_org, name="Demo", kind=IntegrationKind.DEMO,
                                      base_dn="DC=contoso,DC=demo")
    url = reverse("admin:directory_integration_test_connection", args=[demo.pk])
    change_page = reverse("admin:directory_integration_change", args=[demo.pk])
    report = "12 OUs and 58 users"

    viewer = Client()
    viewer.force_login(staff_user("viewer", "directory.view_integration"))
    assert url not in viewer.get(change_page).content.decode()  # no button
    assert report not in viewer.post(url, follow=True).content.decode()
    listed = viewer.post(reverse("admin:directory_integration_changelist"),
                         {"action": "test_connection", "_selected_action": [demo.pk]}, follow=True)
    assert report not in listed.content.decode()

    changer = Client()
    changer.force_login(staff_user("changer", "directory.view_integration", "directory.change_integration"))
    assert changer.get(url).status_code == 405
    page = changer.get(change_page).content.decode()
    assert f'<form method="post" action="{url}"' in page
    assert report in changer.post(url, follow=True).content.decode()

    forged = Client(enforce_csrf_checks=True)
    forged.force_login(staff_user("changer2", "directory.view_integration", "directory.change_integration"))
    assert forged.post(url).status_code == 403  # no CSRF token: refused before the directory is contacted


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_integration_pages_buttons_work_in_a_browser_under_the_content_security_policy(chromium, live_server,
                                                                                           client_org):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    staff_user("boss", superuser=True)
    demo = Integration.objects.create(client=client_org, name="Demo", kind=IntegrationKind.DEMO,
                                      base_dn="DC=contoso,DC=demo")
    agent = Integration.objects.create(client=client_org, name="Agent AD", kind=IntegrationKind.ACTIVE_DIRECTORY,
                                       ad_mode=AdMode.AGENT)
    agent.issue_agent_token()
    token_hash = agent.agent_token_hash
    wait = WebDriverWait(chromium, 20)

    def open_change_page(integration: Integration) -> None:
        chromium.get(live_server.url + reverse("admin:directory_integration_change", args=[integration.pk]))
        wait.until(ec.presence_of_element_located((By.ID, "id_name")))

    chromium.delete_all_cookies()
    chromium.get(live_server.url + reverse("admin:login"))
    wait.until(ec.presence_of_element_located((By.ID, "id_username"))).send_keys("boss")
    chromium.find_element(By.ID, "id_password").send_keys(STAFF_PASSWORD)
    chromium.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "user-tools")))

    open_change_page(demo)
    chromium.find_element(By.XPATH, "//button[normalize-space()='Test connection']").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "ul.messagelist"), "12 OUs and 58 users"))

    # Rotating asks first (a script file: the policy refuses an onclick attribute); "no" keeps the token.
    open_change_page(agent)
    chromium.find_element(By.XPATH, "//button[normalize-space()='Rotate agent token']").click()
    wait.until(ec.alert_is_present()).dismiss()
    agent.refresh_from_db()
    assert agent.agent_token_hash == token_hash
